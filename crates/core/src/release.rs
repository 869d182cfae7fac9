//! Release numbers: Octopus's "next version increment".
