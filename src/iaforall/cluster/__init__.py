"""Scale-out: the same engines as Ray Serve replicas, placed on a Ray cluster."""
