# Tako script API for bash and sh: Octopus's Bash helpers (Calamari's
# Bootstrap.sh) as POSIX functions. This file is sourced into the shell that
# then sources the step's script, so the functions are visible to it and an
# `exit` inside one of them ends the step. get_octopusvariable, with the
# variables embedded, is appended below by Tako.

encode_servicemessagevalue() {
    printf '%s' "$1" | base64 -w0
}

decode_servicemessagevalue() {
    printf '%s' "$1" | base64 -d
}

set_octopusvariable() {
    __tako_message="##octopus[setVariable name='$(encode_servicemessagevalue "$1")'"
    if [ -n "$2" ]; then
        __tako_message="$__tako_message value='$(encode_servicemessagevalue "$2")'"
    fi
    if [ "$3" = "-sensitive" ]; then
        __tako_message="$__tako_message sensitive='$(encode_servicemessagevalue True)'"
    fi
    printf '%s]\n' "$__tako_message"
    unset __tako_message
}

fail_step() {
    if [ -n "$1" ]; then
        printf "##octopus[stepFailed message='%s']\n" "$(encode_servicemessagevalue "$1")"
    fi
    exit 1
}

new_octopusartifact() {
    __tako_path=$1
    case "$__tako_path" in
        /*) ;;
        *) __tako_path="$(pwd)/$__tako_path" ;;
    esac
    if [ ! -f "$__tako_path" ]; then
        printf 'there is no file at %s to collect as an artifact\n' "$__tako_path" >&2
        exit 127
    fi
    __tako_name=$2
    if [ -z "$__tako_name" ]; then
        __tako_name=$(basename "$__tako_path")
    fi
    __tako_length=$(wc -c < "$__tako_path" | tr -d ' ')
    printf 'Collecting %s as an artifact...\n' "$1"
    printf '%s\n' '##octopus[stdout-verbose]'
    printf 'Artifact %s will be collected from %s after this step completes\n' "$__tako_name" "$__tako_path"
    printf '%s\n' '##octopus[stdout-default]'
    printf "##octopus[createArtifact path='%s' name='%s' length='%s']\n" \
        "$(encode_servicemessagevalue "$__tako_path")" \
        "$(encode_servicemessagevalue "$__tako_name")" \
        "$(encode_servicemessagevalue "$__tako_length")"
    unset __tako_path __tako_name __tako_length
}

# Like Octopus's: the message is echoed unquoted (whitespace collapses).
write_verbose() {
    printf '%s\n' '##octopus[stdout-verbose]'
    echo $1
    printf '%s\n' '##octopus[stdout-default]'
}

write_highlight() {
    printf '%s\n' '##octopus[stdout-highlight]'
    echo $1
    printf '%s\n' '##octopus[stdout-default]'
}

write_wait() {
    printf '%s\n' '##octopus[stdout-wait]'
    echo $1
    printf '%s\n' '##octopus[stdout-default]'
}

write_warning() {
    printf '%s\n' '##octopus[stdout-warning]'
    echo $1
    printf '%s\n' '##octopus[stdout-default]'
}

update_progress() {
    printf "##octopus[progress percentage='%s' message='%s']\n" \
        "$(encode_servicemessagevalue "$1")" "$(encode_servicemessagevalue "$2")"
}

tako_get() {
    get_octopusvariable "$@"
}

tako_set() {
    set_octopusvariable "$@"
}

tako_fail() {
    fail_step "$@"
}
