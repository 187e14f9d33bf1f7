# OpenBao node 2 of the docker-compose "ha" profile (docker-compose.yml): three nodes
# with integrated storage (raft), one active and two standbys. Demo only: plain HTTP on
# the compose network and a seal key generated into a volume (openbao-seal-key).
# The three files differ only in node_id, api_addr and cluster_addr.

storage "raft" {
  path    = "/openbao/file"
  node_id = "openbao2"

  # Every node tries every node, so whichever is initialised first (openbao1, by the
  # openbao-init service) is joined by the others, also after a restart in any order.
  retry_join {
    leader_api_addr = "http://openbao1:8200"
  }
  retry_join {
    leader_api_addr = "http://openbao2:8200"
  }
  retry_join {
    leader_api_addr = "http://openbao3:8200"
  }
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
}

# Where the other nodes and clients reach this node. A standby forwards requests to the
# active node over the cluster port, or, when it cannot, answers 307 with the active
# node's api_addr (latchkey follows it).
api_addr     = "http://openbao2:8200"
cluster_addr = "http://openbao2:8201"

# Auto-unseal (OpenBao 2.4+), so a restarted node rejoins without an operator; in
# production a KMS, an HSM or Transit on another Vault instead of a key in a volume.
seal "static" {
  current_key_id = "compose-demo-1"
  current_key    = "file:///openbao/seal/key"
}

# The file audit device latchkey's worker ingests, declared here because OpenBao refuses
# to create audit devices through its API. All three nodes write to one file on the
# shared volume (appends): only the active node handles requests (standbys forward
# them), so the worker reads one file whichever node is active.
audit "file" "latchkey" {
  options {
    file_path     = "/openbao/logs/audit.log"
    hmac_accessor = "false"
    # The worker reads it as another user (uid 1000, the latchkey image's); the volume
    # is mounted only into the three nodes and the worker.
    mode          = "0644"
  }
}

# Standbys forward every request to the active node instead of answering reads from their own,
# possibly stale, raft copy: otherwise a key revoked a moment ago can verify VALID on a standby,
# and a restarted node answers "unknown" for keys it has not replicated yet (docs/vault-notes.md).
disable_standby_reads = true

disable_mlock = true
ui            = false
