{#- Written by `vault init`. The developers' login accounts from the devs pillar
    (conf/pillar/devs.sls), as the template's users/sudo/sshd states did:

    - each user under `users:` is a login account (bash, a home) in its groups (default
      [admin, login]), with exactly its `public_key` lines as ~/.ssh/authorized_keys;
    - the admin group may sudo without a password (a sudoers.d file checked by visudo
      before it is installed);
    - a user taken out of devs.sls can no longer log in: its keys are removed, its
      password locked and its account expired (with UsePAM, sshd lets a locked password
      in by key; an expired account it does not), and its processes are ended. Its home
      is kept. The users to retire
      come from a root-only record of those these states made, never from the groups;
    - with `vault: harden_sshd: True`, sshd refuses root and anyone outside the login
      group, but only when the run itself comes in as such a developer (through sudo).

    Settings under `vault:` in an env.sls: paths (sudoers_dir, sshd_config_dir,
    sshd_config, sshd), sudoers_name, sshd_reload, harden_sshd. -#}
{%- from "vault/map.jinja" import project, root, app_user with context %}
{%- set paths = salt['pillar.get']('vault:paths', {}) %}
{%- set sudoers_dir = paths.get('sudoers_dir', root ~ '/etc/sudoers.d') %}
{%- set sudoers_name = salt['pillar.get']('vault:sudoers_name', 'vault-' ~ project) %}
{%- set sshd_config_dir = paths.get('sshd_config_dir', root ~ '/etc/ssh/sshd_config.d') %}
{%- set sshd_config = paths.get('sshd_config', root ~ '/etc/ssh/sshd_config') %}
{%- set sshd = paths.get('sshd', '/usr/sbin/sshd') %}
{%- set sshd_reload = salt['pillar.get']('vault:sshd_reload', 'systemctl reload ssh') %}
{%- set harden = salt['pillar.get']('vault:harden_sshd', False) %}
{%- set record_dir = root ~ '/var/lib/vault/' ~ project %}
{%- set record = record_dir ~ '/users' %}
{%- set own_groups = ['admin', 'login'] %}
{%- set name_re = '^([a-z_][a-z0-9_-]{0,31})$' %}
{%- set key_re = '^(.* )?((ssh-(ed25519|rsa|dss))|(ecdsa-sha2-nistp(256|384|521))|(sk-[a-z0-9@.-]+)) AAAA[A-Za-z0-9+/=]+( .*)?$' %}

{#- The shell scripts behind the states (plain commands rather than Salt's user and group
    states, whose modules cost a provision with nothing to do about half a second of
    CPU). Each says what it did in Salt's `stateful` form. -#}
{#- Run as root: the groups $@, made where missing: admin and login as system groups,
    any other devs.sls names as a group of developers (gid 1000 and up). -#}
{%- set make_groups -%}
made=
for g in "$@"; do
  case $g in admin | login) sys=--system ;; *) sys= ;; esac
  getent group "$g" >/dev/null || { groupadd $sys "$g" || exit 1; made="$made $g"; }
done
if [ -n "$made" ]; then echo "changed=yes comment=\"groups made:$made\""; else echo 'changed=no comment="groups in place"'; fi
{%- endset %}
{#- Run as root: account $1, a login account (bash, a home) in the groups $2 (a, b), out
    of admin and login unless $2 has them, its password lock and expiry undone. A new
    account gets the password `*`: none, yet not locked. -#}
{%- set make_account -%}
n=$1; want=",$2,"
if ! getent passwd "$n" >/dev/null; then
  useradd --create-home --shell /bin/bash --password '*' ${2:+--groups "$2"} "$n" || exit 1
  echo "changed=yes comment=\"account $n made\""; exit 0
fi
uid=$(getent passwd "$n" | cut -d: -f3); [ "$uid" -ge 1000 ] && [ "$uid" -lt 60000 ] || { echo "$n is a system account, not a developer" >&2; exit 1; }
did=
[ "$(getent passwd "$n" | cut -d: -f7)" = /bin/bash ] || { usermod -s /bin/bash "$n" || exit 1; did="$did shell"; }
have=" $(id -nG "$n") "
for g in $(echo "$2" | tr , ' '); do
  case "$have" in *" $g "*) ;; *) usermod -a -G "$g" "$n" || exit 1; did="$did +$g" ;; esac
done
for g in admin login; do
  case "$want" in *",$g,"*) ;; *) case "$have" in *" $g "*) gpasswd -d "$n" "$g" >/dev/null || exit 1; did="$did -$g" ;; esac ;; esac
done
entry=$(getent shadow "$n")
case "$(echo "$entry" | cut -d: -f2)" in '!'?*) usermod -U "$n" 2>/dev/null || exit 1; did="$did unlocked" ;; esac
[ -z "$(echo "$entry" | cut -d: -f8)" ] || { usermod -e '' "$n" || exit 1; did="$did unexpired"; }
if [ -n "$did" ]; then echo "changed=yes comment=\"account $n:$did\""; else echo "changed=no comment=\"account $n as in devs.sls\""; fi
{%- endset %}
{#- Run as the user, in its home: its authorized keys exactly the arguments, one a line
    (as the user, so a link it made in its home leads nowhere it could not write itself),
    .ssh 0700, the file 0600. -#}
{%- set write_keys -%}
cd || exit 1; umask 077; want=$(printf '%s\n' "$@"); f=.ssh/authorized_keys
mkdir -p .ssh || exit 1
if [ "$(stat -c %a .ssh)" = 700 ] && [ -f $f ] && [ ! -L $f ] && [ "$(stat -c %a $f)" = 600 ] && [ "$(cat $f)" = "$want" ]; then
  echo 'changed=no comment="authorized keys as in devs.sls"'
else
  chmod 700 .ssh && { if [ -n "$want" ]; then printf '%s\n' "$want"; fi; } > $f.vault-new &&
    chmod 600 $f.vault-new && mv -f $f.vault-new $f && echo 'changed=yes comment="authorized keys written from devs.sls"'
fi
{%- endset %}
{#- Run as root: account $1, no longer in devs.sls, kept with its home but unable to log
    in: password locked and account expired first (nothing the user left in its home
    can stop that), then no authorized keys (removed as the user, its ~/.ssh made
    writable to it first: a `chmod 500 ~/.ssh` of its own does not keep them), out of
    admin and login, and no process left running as it (a held SSH session, or a
    connection master that opens new ones without logging in). -#}
{%- set retire_account -%}
n=$1
getent passwd "$n" >/dev/null || { echo "changed=no comment=\"account $n is gone\""; exit 0; }
uid=$(getent passwd "$n" | cut -d: -f3); [ "$uid" -ge 1000 ] && [ "$uid" -lt 60000 ] || { echo "$n is a system account, not a developer: left alone" >&2; exit 1; }
did=
entry=$(getent shadow "$n")
case "$(echo "$entry" | cut -d: -f2):$(echo "$entry" | cut -d: -f8)" in
  '!'*:1) ;;
  *) usermod -L -e 1 "$n" || exit 1; did="$did locked" ;;
esac
keys=$(runuser -u "$n" -- sh -c 'cd || exit 0; [ -d .ssh ] && [ ! -L .ssh ] && chmod u+rwx .ssh
  for f in .ssh/authorized_keys .ssh/authorized_keys2; do
  if [ -e $f ] || [ -L $f ]; then rm -f $f || exit 1; echo " keys"; fi; done') || exit 1
[ -z "$keys" ] || did="$did keys"
have=" $(id -nG "$n") "
for g in admin login; do
  case "$have" in *" $g "*) gpasswd -d "$n" "$g" >/dev/null || exit 1; did="$did -$g" ;; esac
done
alive() { ps -o stat= -u "$n" -U "$n" | grep -qv '^Z'; } # a zombie runs nothing
ended=
for try in 1 2 3; do
  alive || break
  pkill -KILL -u "$n"; pkill -KILL -U "$n"; ended=" processes ended"; sleep 0.2
done
! alive || { echo "processes of $n still run" >&2; exit 1; }
did="$did$ended"
if [ -n "$did" ]; then echo "changed=yes comment=\"account $n retired:${did# }\""; else echo "changed=no comment=\"account $n retired\""; fi
{%- endset %}

{#- The pillar, checked. What is wrong is said by one failing state that runs first and
    stops the run (failhard), so nothing of a bad devs.sls, nor any other state, is applied. -#}
{%- set problems = [] %}
{%- set users = salt['pillar.get']('users', {}) %}
{%- set users = users if users is not none else {} %}
{%- if users is not mapping %}
  {%- do problems.append('devs.sls: users must be a mapping of user name to {groups: [...], public_key: [...]}') %}
  {%- set users = {} %}
{%- endif %}
{%- if harden is not sameas true and harden is not sameas false %}
  {%- do problems.append('vault: harden_sshd must be True or False, not ' ~ harden) %}
{%- endif %}
{%- if not sudoers_name|string|regex_match('^([A-Za-z0-9_-]+)$') %}
  {%- do problems.append('vault: sudoers_name ' ~ sudoers_name ~ ' would be skipped by sudo: use letters, digits, _ and - only') %}
{%- endif %}
{#- Everyone these states ever made an account for (or adopted): with today's users,
    those no longer in devs.sls are retired on every run (a no-op once they are). -#}
{%- set recorded = [] %}
{%- if salt['file.file_exists'](record) %}
  {%- for line in salt['file.read'](record).splitlines() %}
    {%- if line|trim|regex_match(name_re) and line|trim not in recorded %}{% do recorded.append(line|trim) %}{% endif %}
  {%- endfor %}
{%- endif %}
{#- Retiring the account this run comes in as would end its own session mid-run. -#}
{%- set sudo_user = salt['environ.get']('SUDO_USER') %}
{%- if sudo_user and sudo_user in recorded and sudo_user not in users %}
  {%- do problems.append('devs.sls: ' ~ sudo_user ~ ' is taken out of devs.sls but runs this provision: provision as another developer of devs.sls (or root) to retire them') %}
{%- endif %}
{%- set accounts = {} %}
{%- for name, spec in users.items() %}
  {%- set spec = spec if spec is not none else {} %}
  {%- set groups = spec.get('groups', ['admin', 'login']) if spec is mapping else [] %}
  {%- set keys = spec.get('public_key', []) if spec is mapping else [] %}
  {%- set keys = keys if keys is not none else [] %}
  {%- set groups_listed = groups is not string and groups is not mapping and groups is iterable %}
  {%- set keys_listed = keys is not string and keys is not mapping and keys is iterable %}
  {%- set bad_groups = [] %}
  {%- for g in (groups if groups_listed else []) if g is not string or '\n' in g or not g|regex_match(name_re) %}
    {%- do bad_groups.append(g|string) %}
  {%- endfor %}
  {#- Beyond admin and login, only a group of developers: not root's, not the app user's
      (which reads the secrets), nor a system group (gid below 1000: disk, shadow,
      docker and sudo are root by another name). #}
  {%- set system_groups = [] %}
  {%- for g in (groups if groups_listed and not bad_groups else []) if g not in own_groups %}
    {%- set entry = salt['cmd.run_stdout']('getent group ' ~ g, ignore_retcode=True, output_loglevel='quiet') %}
    {%- set gid = entry.split(':')[2]|int if entry.count(':') >= 3 else none %}
    {%- if g in ['root', app_user] or (gid is not none and (gid < 1000 or gid >= 60000)) %}
      {%- do system_groups.append(g) %}
    {%- endif %}
  {%- endfor %}
  {%- set bad_keys = [] %}
  {%- for k in (keys if keys_listed else []) %}
    {#- Every line break YAML knows (\x85, \u2028, \u2029 too) is refused: one would cut
        the line in two wherever a key reaches Salt's YAML unquoted. #}
    {%- if k is not string or '\n' in k or '\r' in k or '\x85' in k or '\u2028' in k or '\u2029' in k or not k|trim|regex_match(key_re) %}
      {%- do bad_keys.append(loop.index|string) %}
    {%- endif %}
  {%- endfor %}
  {%- set existing = salt['cmd.run_stdout']('getent passwd ' ~ name, ignore_retcode=True, output_loglevel='quiet') if name is string and '\n' not in name and name|regex_match(name_re) else '' %}
  {%- set existing_uid = existing.split(':')[2]|int if existing.count(':') >= 6 else none %}
  {%- if name is not string or '\n' in name or not name|regex_match(name_re) %}
    {%- do problems.append('devs.sls: bad user name ' ~ name ~ ': use a lowercase letter or _, then lowercase letters, digits, _ or -; at most 32') %}
  {%- elif name in ['root', app_user] + own_groups %}
    {%- do problems.append('devs.sls: ' ~ name ~ ' cannot be a developer account (it is root, the app user, or a group of these states)') %}
  {#- Developers' uids are Debian's UID_MIN..UID_MAX (1000..60000): nobody (65534) and
      the dynamic system users above 60000 are no one's account. #}
  {%- elif existing_uid is not none and (existing_uid < 1000 or existing_uid >= 60000) %}
    {%- do problems.append('devs.sls: ' ~ name ~ ' is a system account (uid ' ~ existing_uid ~ '), not a developer') %}
  {#- An account vault did not make (a cloud image's default user, often with sudo of
      its own) is taken over only when devs.sls says so: a careless approver reads a
      login-only entry, not "replace this account's keys and keep its sudo". #}
  {%- elif existing and name not in recorded and not (spec is mapping and spec.get('adopt') is sameas true) %}
    {%- do problems.append('devs.sls: ' ~ name ~ ' is an account these states did not make: add `adopt: True` under it to manage it (its keys replaced, its other groups and sudo rules left as they are)') %}
  {%- elif spec is not mapping %}
    {%- do problems.append('devs.sls: ' ~ name ~ ' must be a mapping with groups and public_key') %}
  {%- elif not groups_listed %}
    {%- do problems.append('devs.sls: ' ~ name ~ ': groups must be a list, e.g. [admin, login]') %}
  {%- elif bad_groups %}
    {%- do problems.append('devs.sls: ' ~ name ~ ': bad group name ' ~ bad_groups|join(', ')) %}
  {%- elif system_groups %}
    {%- do problems.append('devs.sls: ' ~ name ~ ': ' ~ system_groups|join(', ') ~ ' is root\'s, the app user\'s or a system group, no developer group (admin is the one that gives sudo)') %}
  {%- elif not keys_listed %}
    {%- do problems.append('devs.sls: ' ~ name ~ ': public_key must be a list of key lines (- ssh-ed25519 AAAA...), not one string') %}
  {%- elif bad_keys %}
    {%- do problems.append('devs.sls: ' ~ name ~ ': public_key entry ' ~ bad_keys|join(', ') ~ ' is not one public key line (ssh-ed25519 AAAA..., ssh-rsa AAAA..., ecdsa-sha2-... AAAA...)') %}
  {%- else %}
    {%- do accounts.update({name: {'groups': groups|list|unique|list, 'keys': keys|map('trim')|list}}) %}
  {%- endif %}
{%- endfor %}
{%- if problems %}

devs_pillar_invalid:
  test.fail_without_changes:
    - comment: {{ problems|join('; ')|yaml_dquote }}
    - order: 1
    - failhard: True
{%- else %}

{%- set known = (recorded + accounts.keys()|list)|unique|sort %}

devs_record_dir:
  file.directory:
    - name: {{ record_dir }}
    - user: root
    - mode: '0700'
    - makedirs: True

# Written before any account is made, so a run cut short still knows whom to retire.
devs_record:
  file.managed:
    - name: {{ record }}
    - user: root
    - mode: '0600'
    - contents: {{ (known|join('\n') ~ '\n')|yaml_dquote }}
    - require:
      - file: devs_record_dir

{%- set all_groups = own_groups|list %}
{%- for spec in accounts.values() %}{% for g in spec.groups if g not in all_groups %}{% do all_groups.append(g) %}{% endfor %}{% endfor %}

devs_groups:
  cmd.run:
    - name: sh -c "$MAKE_GROUPS" sh {{ all_groups|join(' ') }}
    - env:
      - MAKE_GROUPS: {{ make_groups|yaml_dquote }}
    - stateful: True

{%- for name, spec in accounts.items() %}

devs_user_{{ name }}:
  cmd.run:
    - name: sh -c "$MAKE_ACCOUNT" sh {{ name }} {{ spec.groups|join(',')|quote }}
    - env:
      - MAKE_ACCOUNT: {{ make_account|yaml_dquote }}
    - stateful: True
    - require:
      - file: devs_record
      - cmd: devs_groups

devs_{{ name }}_keys:
  cmd.run:
    - name: {{ ('runuser -u ' ~ name ~ ' -- sh -c "$WRITE_KEYS" sh ' ~ spec['keys']|map('quote')|join(' '))|yaml_dquote }}
    - env:
      - WRITE_KEYS: {{ write_keys|yaml_dquote }}
    - stateful: True
    - require:
      - cmd: devs_user_{{ name }}
{%- endfor %}

{%- for name in known if name not in accounts %}

devs_{{ name }}_retired:
  cmd.run:
    - name: sh -c "$RETIRE_ACCOUNT" sh {{ name }}
    - env:
      - RETIRE_ACCOUNT: {{ retire_account|yaml_dquote }}
    - stateful: True
    - require:
      - file: devs_record
{%- endfor %}

# The admin group may run anything as root without a password. visudo checks the new
# file before it replaces the old one: a broken sudoers file is never installed.
devs_sudoers:
  file.managed:
    - name: {{ sudoers_dir }}/{{ sudoers_name }}
    - user: root
    - group: root
    - mode: '0440'
    - makedirs: True
    - check_cmd: /usr/sbin/visudo -c -f
    - contents: |
        # Managed by Salt (vault): the admin group of devs.sls may sudo without a password.
        %admin ALL=(ALL:ALL) NOPASSWD: ALL
    - require:
      - cmd: devs_groups

{%- set dropin = sshd_config_dir ~ '/10-vault-' ~ project ~ '.conf' %}
{%- set runner = salt['environ.get']('SUDO_USER') %}
{%- set runner_spec = accounts.get(runner, {}) %}
{%- if not harden %}

devs_sshd_hardened:
  file.absent:
    - name: {{ dropin }}
{%- elif runner_spec and 'login' in runner_spec.groups and runner_spec['keys'] %}

# Only root-less logins of the login group. sshd checks its whole configuration with
# the new file first (the file, then the main config), and again before the reload.
devs_sshd_hardened:
  file.managed:
    - name: {{ dropin }}
    - user: root
    - mode: '0644'
    - makedirs: True
    - check_cmd: >-
        /bin/sh -c 'f=$(mktemp) || exit 1; { cat "$1"; echo "Include $0"; } > "$f";
        {{ sshd }} -t -f "$f"; r=$?; rm -f "$f"; exit $r' {{ sshd_config|quote }}
    - contents: |
        # Managed by Salt (vault): no root logins; only the login group of devs.sls.
        PermitRootLogin no
        AllowGroups login
    - require:
      - cmd: devs_user_{{ runner }}
      - cmd: devs_{{ runner }}_keys
{%- else %}

# Hardening now could lock out whoever runs this provision: it is applied only on a run
# that comes in as a developer of devs.sls (through sudo) in the login group, with a key.
devs_sshd_hardened:
  test.configurable_test_state:
    - changes: False
    - comment: sshd hardening skipped
    - warnings:
      - >-
        sshd hardening skipped: it could lock out whoever runs this provision, which
        does not come in through sudo as a developer of devs.sls in the login group with
        a key; provision as one (vault provision ENV -u NAME) to apply it
{%- endif %}

devs_sshd_reload:
  cmd.run:
    - name: {{ sshd }} -t -f {{ sshd_config|quote }} && {{ sshd_reload }}
    - onchanges:
      - devs_sshd_hardened
{%- if harden and runner_spec and 'login' in runner_spec.groups and runner_spec['keys'] %}

# sshd keeps the first value it reads of a setting: an earlier drop-in, or a line of
# the main config before its Include, would leave the hardening without effect, with
# `sshd -t` content. What sshd would apply must say so, on every run that hardens.
devs_sshd_effective:
  cmd.run:
    - name: >-
        t=$({{ sshd }} -T -f {{ sshd_config|quote }} 2>&1) || { echo "sshd -T failed: $t" >&2; exit 1; };
        printf '%s\n' "$t" | grep -qx 'permitrootlogin no' && printf '%s\n' "$t" | grep -qx 'allowgroups login'
        || { echo "sshd hardening has no effect: an earlier setting wins (sshd keeps the first value it reads); sshd -T says $(printf '%s\n' "$t" | grep -E '^(permitrootlogin|allowgroups) ' | tr '\n' ' '); remove the earlier setting, then {{ sshd_reload }}" >&2; exit 1; }
    - require:
      - cmd: devs_sshd_reload
{%- endif %}
{%- endif %}
