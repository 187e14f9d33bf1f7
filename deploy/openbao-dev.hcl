# Merged into `bao server -dev` by docker-compose: the file audit device latchkey's worker ingests.
# OpenBao refuses to create audit devices through the API, so it is declared here.
audit "file" "latchkey" {
  options {
    file_path     = "/openbao/audit/audit.log"
    hmac_accessor = "false"
  }
}
