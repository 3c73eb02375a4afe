"""provisioner: realize a labspec model on Docker engines, run its checks, drive fleets."""
