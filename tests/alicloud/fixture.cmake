# The fake Alibaba Cloud (OSS + ECS, tests/alicloud/README.md): fixture
# "alicloud", two loopback ports from CLOUD_HELPER_ALICLOUD_PORT_BASE.
# Included by CMakeLists.txt inside its testing block.
set(CLOUD_HELPER_ALICLOUD_PORT_BASE 47300 CACHE STRING "First of the two loopback ports of the fake Alibaba Cloud")
set(alicloud_dir ${CMAKE_BINARY_DIR}/alicloud-emulators)
math(EXPR alicloud_port_ecs "${CLOUD_HELPER_ALICLOUD_PORT_BASE} + 1")
add_test(NAME alicloud_emulators_start
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/alicloud/emulators.py start --dir ${alicloud_dir}
          --port-base ${CLOUD_HELPER_ALICLOUD_PORT_BASE})
add_test(NAME alicloud_emulators_stop
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/alicloud/emulators.py stop --dir ${alicloud_dir})
set_tests_properties(alicloud_emulators_start PROPERTIES FIXTURES_SETUP alicloud TIMEOUT 60)
set_tests_properties(alicloud_emulators_stop PROPERTIES FIXTURES_CLEANUP alicloud TIMEOUT 30)
list(APPEND aws_test_env
  "CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT=http://127.0.0.1:${CLOUD_HELPER_ALICLOUD_PORT_BASE}"
  "CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT=http://127.0.0.1:${alicloud_port_ecs}")
list(APPEND test_fixtures alicloud)
