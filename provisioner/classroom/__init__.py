"""Virtual classrooms on a Docker Swarm cluster: one sandbox per learner (its own Docker engine
and sshd, a Swarm service), reached over SSH through the same path as a physical machine, fed by
one class registry per cluster. ``labup class up|status|down|connect``
(``provisioner/cli/classroom.py``) drive it; everything here is typed against
:class:`provisioner.engine.swarm.SwarmManager`.
"""
