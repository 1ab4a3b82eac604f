# Written by `vault init`. The project's states: the app user, the secrets it runs
# with, gunicorn under supervisord, a manage wrapper, and the developers' accounts.
base:
  '*':
    - project
    - project.devs
