# The fake Google Cloud (tests/gcp/fake_gcp.py, tests/gcp/README.md): fixture
# "gcp", one loopback port from CLOUD_HELPER_GCP_PORT_BASE. Included by
# CMakeLists.txt; the start also makes the test credentials in gcp_dir.
set(CLOUD_HELPER_GCP_PORT_BASE 47200 CACHE STRING "Loopback port of the fake Google Cloud used by the tests")
set(gcp_dir ${CMAKE_BINARY_DIR}/gcp-emulators)
cloud_helper_emulator_fixture(gcp ${gcp_dir} ${CLOUD_HELPER_GCP_PORT_BASE} 60)
list(APPEND aws_test_env
  "CLOUD_HELPER_GCP_ENDPOINT=http://127.0.0.1:${CLOUD_HELPER_GCP_PORT_BASE}"
  "CLOUD_HELPER_GCP_SA_JSON=${gcp_dir}/sa.json"
  "CLOUD_HELPER_GCP_USER_JSON=${gcp_dir}/user.json"
  "CLOUD_HELPER_GCP_EXTERNAL_JSON=${gcp_dir}/external.json")
