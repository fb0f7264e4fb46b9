"""The cluster: membership (SWIM with Lifeguard), the authenticated
node-to-node channel, replication of cluster-wide records and the
scheduler.  Nothing here imports the API or compute layers."""
