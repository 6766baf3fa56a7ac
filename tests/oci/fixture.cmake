# The fake OCI service (tests/oci/README.md): fixture "oci", one loopback
# port, CLOUD_HELPER_OCI_PORT_BASE; the test API keys and OCI config file are
# made in the fixture's directory by the start script.
set(CLOUD_HELPER_OCI_PORT_BASE 48320 CACHE STRING "Loopback port of the fake OCI service")
set(oci_dir ${CMAKE_BINARY_DIR}/oci-emulators)
add_test(NAME oci_emulators_start
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/oci/emulators.py start --dir ${oci_dir}
          --port-base ${CLOUD_HELPER_OCI_PORT_BASE})
add_test(NAME oci_emulators_stop
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/oci/emulators.py stop --dir ${oci_dir})
set_tests_properties(oci_emulators_start PROPERTIES FIXTURES_SETUP oci TIMEOUT 60)
set_tests_properties(oci_emulators_stop PROPERTIES FIXTURES_CLEANUP oci TIMEOUT 30)
list(APPEND aws_test_env
  "CLOUD_HELPER_OCI_ENDPOINT=http://127.0.0.1:${CLOUD_HELPER_OCI_PORT_BASE}"
  "CLOUD_HELPER_OCI_CONFIG=${oci_dir}/config")
list(APPEND test_fixtures oci)
