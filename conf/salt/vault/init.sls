{#- vault's part of a server: the program's environment (the env: settings and the
    secrets) in a root:<app user> 0640 file, and the `<project>-run` wrapper that starts a
    command with it. The project's states (conf/salt/project) include it; a template
    project's own states can too, once the app user exists (`vault: app_user:`, default
    the project name), and start their program through the wrapper. -#}
{%- from "vault/map.jinja" import project, app_user, etc_dir, bin_dir with context %}

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
    - source: salt://vault/secrets.env.jinja
    - template: jinja
    - user: root
    - group: {{ app_user }}
    - mode: '0640'
    - show_changes: False
    - require:
      - file: secrets_dir

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
