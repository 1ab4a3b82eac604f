{%- from "project/map.jinja" import project, app_user, etc_dir, bin_dir, run_dir,
    supervisor_conf_dir, supervisor_conf, supervisorctl, app_dir, gunicorn, wsgi, bind, manage with context %}

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

# The secrets, readable by root and the app user only. show_changes: False keeps their
# content out of Salt's output and job cache.
secrets_dir:
  file.directory:
    - name: {{ etc_dir }}
    - user: root
    - group: {{ app_user }}
    - mode: '0750'
    - makedirs: True

secrets_env:
  file.managed:
    - name: {{ etc_dir }}/secrets.env
    - source: salt://project/secrets.env.jinja
    - template: jinja
    - user: root
    - group: {{ app_user }}
    - mode: '0640'
    - show_changes: False
    - require:
      - file: secrets_dir

# Where gunicorn's socket lives: the app user's.
run_dir:
  file.directory:
    - name: {{ run_dir }}
    - user: {{ app_user }}
    - mode: '0755'
    - makedirs: True

# Runs a command with the secrets in its environment, byte for byte.
run_wrapper:
  file.managed:
    - name: {{ bin_dir }}/{{ project }}-run
    - user: root
    - mode: '0755'
    - makedirs: True
    - contents: |
        #!/bin/sh
        # Managed by Salt (vault): run a command with {{ project }}'s secrets.
        set -a
        . '{{ etc_dir }}/secrets.env'
        set +a
        exec "$@"

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
        stopasgroup=true
        killasgroup=true
        redirect_stderr=true

# supervisorctl directly (Salt 3008 ships no supervisord state): the program is
# (re)read when its definition changes, restarted when its secrets or wrapper change,
# started if it is not running, and otherwise left alone.
{%- set ctl = supervisorctl ~ " -c " ~ supervisor_conf %}
gunicorn_update:
  cmd.run:
    - name: {{ ctl }} update {{ project }}-gunicorn
    - onchanges:
      - file: gunicorn_conf
    - require:
      - file: run_dir
      - file: secrets_env

gunicorn_restart:
  cmd.run:
    # `update` loads it if an earlier run wrote its file but never got supervisord to read it.
    - name: {{ ctl }} restart {{ project }}-gunicorn || {{ ctl }} update {{ project }}-gunicorn
    - onchanges:
      - file: secrets_env
      - file: run_wrapper
    - require:
      - cmd: gunicorn_update

gunicorn_running:
  cmd.run:
    # No supervisorctl (a Python start-up) when gunicorn's pid is alive (and is still
    # gunicorn, not a reused pid); otherwise the
    # program's file is read and it is started unless supervisord already has it going.
    # The check is in the command, reported through `stateful`, rather than an
    # `unless`: that makes Salt load every state module, about a second of CPU per run.
    - name: >-
        pid=$(cat '{{ run_dir }}/gunicorn.pid' 2>/dev/null);
        if [ -n "$pid" ] && grep -qa gunicorn "/proc/$pid/cmdline" 2>/dev/null;
        then echo 'changed=no comment="running"';
        else {{ ctl }} update {{ project }}-gunicorn >/dev/null;
        if {{ ctl }} status {{ project }}-gunicorn | grep -qE 'RUNNING|STARTING';
        then echo 'changed=no comment="running"';
        else {{ ctl }} start {{ project }}-gunicorn && echo 'changed=yes comment="started"';
        fi;
        fi
    - stateful: True
    - require:
      - cmd: gunicorn_restart
