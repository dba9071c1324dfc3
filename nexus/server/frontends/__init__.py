"""Front ends: the byte-level glue between a kind of peer and the connection core."""
