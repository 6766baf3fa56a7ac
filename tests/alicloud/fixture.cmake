# The fake Alibaba Cloud (OSS + ECS, tests/alicloud/README.md): fixture
# "alicloud", two loopback ports from CLOUD_HELPER_ALICLOUD_PORT_BASE.
# Included by CMakeLists.txt inside its testing block.
set(CLOUD_HELPER_ALICLOUD_PORT_BASE 47300 CACHE STRING "First of the two loopback ports of the fake Alibaba Cloud")
set(alicloud_dir ${CMAKE_BINARY_DIR}/alicloud-emulators)
math(EXPR alicloud_port_ecs "${CLOUD_HELPER_ALICLOUD_PORT_BASE} + 1")
cloud_helper_emulator_fixture(alicloud ${alicloud_dir} ${CLOUD_HELPER_ALICLOUD_PORT_BASE} 60)
list(APPEND aws_test_env
  "CLOUD_HELPER_ALICLOUD_OSS_ENDPOINT=http://127.0.0.1:${CLOUD_HELPER_ALICLOUD_PORT_BASE}"
  "CLOUD_HELPER_ALICLOUD_ECS_ENDPOINT=http://127.0.0.1:${alicloud_port_ecs}")
