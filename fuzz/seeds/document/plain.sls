secrets:
  DB_PASSWORD: "s3cr3t"
  SECRET_KEY: 'it''s here'
  PLAIN: yes
  NUM: 0123
  MULTI: |
    line one
    line two
  FOLDED: >-
    a b
    c
