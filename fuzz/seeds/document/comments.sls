# staging secrets
secrets:
  # the db
  A: "x\ty\u00e9"   # trailing
  B: ~foo
  C: ""
  D: "%(x)s $HOME \\ \" ,="
