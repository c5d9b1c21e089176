"""`pkg deploy`: manifests that run a built image on Kubernetes, KServe, docker compose (and Ray).

Each target is a module with one `write_*(package, options, out_dir) -> list[Path]` function;
`packager._cli_deploy` keeps the table of targets.
"""
