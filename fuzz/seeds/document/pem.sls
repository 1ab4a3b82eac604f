secrets:
  PEM: "-----BEGIN-----\nabc\n-----END-----\n"
  JINJA: "{{ x }}"
