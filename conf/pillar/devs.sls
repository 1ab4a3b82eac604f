# Developers' login accounts on the servers (conf/salt/project/devs.sls makes them):
# users:
#   example-user:
#     groups: [admin, login]      # admin: passwordless sudo; login: may log in by ssh
#     public_key:                 # exactly these lines become ~/.ssh/authorized_keys
#       - ssh-ed25519 AAAA...
# Someone taken out of this list can no longer log in (keys removed, account locked and
# expired); their home is kept.
users: {}
