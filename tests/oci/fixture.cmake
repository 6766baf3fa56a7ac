# The fake OCI service (tests/oci/README.md): fixture "oci", one loopback
# port, CLOUD_HELPER_OCI_PORT_BASE; the test API keys and OCI config file are
# made in the fixture's directory by the start script.
set(CLOUD_HELPER_OCI_PORT_BASE 48320 CACHE STRING "Loopback port of the fake OCI service")
set(oci_dir ${CMAKE_BINARY_DIR}/oci-emulators)
cloud_helper_emulator_fixture(oci ${oci_dir} ${CLOUD_HELPER_OCI_PORT_BASE} 60)
list(APPEND aws_test_env
  "CLOUD_HELPER_OCI_ENDPOINT=http://127.0.0.1:${CLOUD_HELPER_OCI_PORT_BASE}"
  "CLOUD_HELPER_OCI_CONFIG=${oci_dir}/config")
