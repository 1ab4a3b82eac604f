# Developers' login accounts on the servers:
# users:
#   example-user:
#     groups: [admin, login]
#     public_key:
#       - ssh-ed25519 AAAA...
users: {}
