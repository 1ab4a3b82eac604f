environment: staging
domain: staging.example.com
# Servers of staging: [user@]host[:port]
hosts: []
