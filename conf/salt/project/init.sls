{%- from "vault/map.jinja" import project, app_user, etc_dir, bin_dir, run_dir,
    supervisor_conf_dir, supervisor_conf, supervisorctl, app_dir, gunicorn, wsgi, bind, manage,
    startsecs, startretries, health with context %}

# vault's env file and run wrapper (conf/salt/vault): what a template project's own
# states include too.
include:
  - vault


{%- if app_user != 'root' %}
app_user:
  user.present:
    - name: {{ app_user }}
    - system: True
    - createhome: False
    - shell: /usr/sbin/nologin
    - require_in:
      - file: secrets_dir
{%- endif %}

# Where gunicorn's socket lives: the app user's.
run_dir:
  file.directory:
    - name: {{ run_dir }}
    - user: {{ app_user }}
    - mode: '0755'
    - makedirs: True

# Django management commands with the same environment, as the app user.
manage_wrapper:
  file.managed:
    - name: {{ bin_dir }}/{{ project }}-manage
    - user: root
    - mode: '0755'
    - contents: |
        #!/bin/sh
        # Managed by Salt (vault): manage.py with {{ project }}'s secrets, as {{ app_user }}.
        cd '{{ app_dir }}' || exit 1
        if [ "$(id -un)" != '{{ app_user }}' ]; then
            exec runuser -u '{{ app_user }}' -- '{{ bin_dir }}/{{ project }}-run' {{ manage }} "$@"
        fi
        exec '{{ bin_dir }}/{{ project }}-run' {{ manage }} "$@"
    - require:
      - file: run_wrapper

gunicorn_conf:
  file.managed:
    - name: {{ supervisor_conf_dir }}/{{ project }}-gunicorn.conf
    - user: root
    - mode: '0644'
    - makedirs: True
    - contents: |
        [program:{{ project }}-gunicorn]
        command={{ bin_dir }}/{{ project }}-run {{ gunicorn }} --bind {{ bind }} --pid {{ run_dir }}/gunicorn.pid {{ wsgi }}
        directory={{ app_dir }}
        user={{ app_user }}
        autostart=true
        autorestart=true
        startsecs={{ startsecs }}
        startretries={{ startretries }}
        stopasgroup=true
        killasgroup=true
        redirect_stderr=true

{#- The health path is a path on the program's own socket: anything else in the URL (a
    `@` that makes what comes before it a user name, a host of its own) would have curl
    ask another server, whose answer would pass for the program's. #}
{%- if health and not (health is string and health|regex_match('^/[!-~]*$')) %}

app_health_invalid:
  test.fail_without_changes:
    - comment: {{ ('app: health must be a path on the socket of the program: a / then printable characters, no space (not ' ~ health ~ ')')|yaml_dquote }}
    - order: 1
    - failhard: True
{%- endif %}

{#- A value in single quotes for the shell: every byte kept, a quote written '\''. #}
{%- macro sq(value) %}'{{ value|replace("'", "'\\''") }}'{% endmacro %}
{%- set program = project ~ '-gunicorn' %}
{%- if bind.startswith('unix:') %}
{%- set health_get = '--unix-socket ' ~ sq(bind[5:]) ~ ' ' ~ sq('http://localhost' ~ health) %}
{%- else %}
{%- set address = bind|replace('0.0.0.0', '127.0.0.1')|replace('[::]', '[::1]') %}
{%- set address = address if address.rsplit(']', 1)[-1].count(':') else address ~ ':8000' %}
{%- set health_get = sq('http://' ~ address ~ health) %}
{%- endif %}
{#- The start of the program, checked: given `restart` or `start`, (re)reads its
    definition, restarts or starts it as needed, and waits until supervisord calls it
    RUNNING (past its startsecs) or gives up on it (BACKOFF, FATAL, EXITED), or a
    deadline passes; then, with a health path, GETs it on the program's socket. A
    program that does not get there fails the state, which prints the program's state
    and the last lines of its log as `vault-report:` lines, for vault's closing table;
    one that does says so in a `vault-did:` line, for the table's account of the run.
    Read by `sh -s` from standard input: the state's name stays short, and no file is
    added to the states a run with nothing to do must read. #}
{%- set program_check -%}
main() {
    prog={{ sq(program) }}
    ctl() { {{ sq(supervisorctl) }} -c {{ sq(supervisor_conf) }} "$@"; }
    deadline=$(( $(date +%s) + {{ startsecs }} * ({{ startretries }} + 1) + 15 ))
    report() { echo "vault-report: $prog: $*"; }
    fail() {
        report "$*"
        if log=$(ctl tail -8000 "$prog" 2>&1); then
            # A full tail (the log's last 8000 bytes) may begin inside a line, and so
            # inside a secret the app printed: the end of a value cut in two is nothing
            # the redaction can find. Its first line is left out.
            [ "$(printf '%s\n' "$log" | wc -c)" -lt 8000 ] || log=$(printf '%s\n' "$log" | sed 1d)
            echo "vault-report: $prog's log, last 10 lines:"
            printf '%s\n' "$log" | tail -n 10 | sed 's/^/vault-report: | /'
        else
            report "no log: $log"
        fi
        exit 1
    }
    state() { ctl status "$prog" 2>&1 | awk '{ $1 = ""; sub(/^ /, ""); print }'; }
    out=$(ctl update "$prog" 2>&1) || fail "supervisorctl update failed: $out"
    case $out in
    *"process group"*) action=start loaded=yes ;; # just (re)loaded: supervisord is starting it
    *) action=$1 ;;
    esac
    # start: left alone when supervisord has it going already (BACKOFF: retrying).
    [ "$action" = start ] && case $(state) in RUNNING* | STARTING* | BACKOFF*) action=none ;; esac
    if [ "$action" != none ]; then
        wait=$(( deadline - $(date +%s) ))
        out=$(timeout "$wait" {{ sq(supervisorctl) }} -c {{ sq(supervisor_conf) }} "$action" "$prog" 2>&1) || {
            why=$(printf '%s\n' "$out" | grep -o 'ERROR.*' | tail -n 1)
            fail "$action failed: ${why:-no answer in ${wait}s}; now $(state)"
        }
        printf '%s\n' "$out"
    fi
    while :; do
        now=$(state)
        case ${now%% *} in
        RUNNING) break ;;
        STARTING | STOPPED) ;; # STOPPED: added, not yet started
        *) fail "did not start: $now" ;;
        esac
        [ "$(date +%s)" -lt "$deadline" ] || fail "still not RUNNING after {{ startsecs }}s * {{ startretries + 1 }} + 15s: $now"
        sleep 0.5
    done
    case $action in
    none) [ -n "${loaded:-}" ] && verb=started || verb="going already" ;;
    *) verb=${action}ed ;;
    esac
    echo "vault-did: $prog $verb: ${now%% *} past its startsecs ({{ startsecs }}s)"
{%- if health %}
    path={{ sq(health) }}
    command -v curl >/dev/null || fail "GET $path: no curl on this server (install curl)"
    for try in 1 2 3; do
        code=$(curl -s -g -o /dev/null -w '%{http_code}' --max-time 10 {{ health_get }}) && break
        sleep 1
    done
    case $code in
    2?? | 3??) echo "vault-did: $prog answered GET $path with $code" ;;
    000) fail "GET $path: no answer" ;;
    *) fail "GET $path answered $code" ;;
    esac
{%- endif %}
}
main "$@" </dev/null
{%- endset %}

# supervisorctl directly (Salt 3008 ships no supervisord state): the program is
# (re)read and restarted when its definition, secrets or wrapper change, started if it
# is not running, and otherwise left alone; each start or restart checked as above.
gunicorn_restart:
  cmd.run:
    - name: sh -s restart
    - stdin: |
        {{ program_check|indent(8) }}
    - onchanges:
      - file: gunicorn_conf
      - file: secrets_env
      - file: run_wrapper
    - require:
      - file: run_dir

gunicorn_running:
  cmd.run:
    # No supervisorctl (a Python start-up) when gunicorn's pid is alive (and is still
    # gunicorn, not a reused pid); otherwise `gunicorn_start` starts it. The check is in
    # the command, reported through `stateful`, rather than an `unless`: that makes Salt
    # load every state module, about a second of CPU per run.
    - name: >-
        pid=$(cat '{{ run_dir }}/gunicorn.pid' 2>/dev/null);
        if [ -n "$pid" ] && grep -qa gunicorn "/proc/$pid/cmdline" 2>/dev/null;
        then echo 'changed=no comment="running"';
        else echo 'changed=yes comment="not running"';
        fi
    - stateful: True
    - require:
      - cmd: gunicorn_restart

gunicorn_start:
  cmd.run:
    - name: sh -s start
    - stdin: |
        {{ program_check|indent(8) }}
    - onchanges:
      - cmd: gunicorn_running
