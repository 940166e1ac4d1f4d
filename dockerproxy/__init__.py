"""A filtering proxy in front of the Docker engine's socket, for the workers' container jobs.

Whoever can talk to the engine's socket is root on the host. The workers get this proxy instead: it
passes the few calls a container job needs, refuses a create request that would give the container the
host (privileged mode, mounts, capabilities, devices, host namespaces, root), and lets the workers see and
touch only the containers it created itself. `rules` decides, `server` relays.
"""
