//! The clock as templates see it: one evaluation context for every caller.
//!
//! Octopus evaluates dates (`#{ | NowDate}`, release number templates) in
//! the server's local time; so does Tako, with the local offset of the
//! machine that runs the evaluation. The engine, the server's release
//! numbering and `tako run` all take their context from [`eval_context`].

use chrono::{Offset, Utc};
use tako_octostache::EvalContext;

/// Now, with this machine's local UTC offset.
pub fn eval_context() -> EvalContext {
    EvalContext {
        now_utc: Utc::now(),
        local_offset: chrono::Local::now().offset().fix(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_now_with_the_local_offset() {
        let before = Utc::now();
        let context = eval_context();
        assert!(context.now_utc >= before);
        assert_eq!(context.local_offset, chrono::Local::now().offset().fix());
    }
}
