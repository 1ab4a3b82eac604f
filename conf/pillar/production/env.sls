environment: production
domain: production.example.com
# Servers of production: [user@]host[:port]
hosts: []
