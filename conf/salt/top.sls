# Written by `vault init`. The project's states: the app user, the secrets it runs
# with, gunicorn under supervisord, and a manage wrapper.
base:
  '*':
    - project
