secrets: {}
