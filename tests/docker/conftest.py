"""Docker tests: the shared helpers live in docker_helpers.py (`from docker_helpers import docker`).

tests/docker is on sys.path (pytest's rootdir-relative import), like tests/server/harness.py;
the module has a unique name so that it never clashes with another directory's helper module.
"""
