project_name: example
