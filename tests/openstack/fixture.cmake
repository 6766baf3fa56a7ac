# The OpenStack services (Debian's Keystone and three glance-api, plus the
# fault proxy and a static HTTP server as web-download source;
# tests/openstack/README.md): fixture "openstack", six loopback ports from
# CLOUD_HELPER_OPENSTACK_PORT_BASE. The databases are
# made once per port base and kept in the fixture directory, so only the
# first start of a build tree pays for keystone-manage and glance-manage.
set(CLOUD_HELPER_OPENSTACK_PORT_BASE 47600 CACHE STRING
    "First of the six loopback ports of the OpenStack test services (Keystone, Glance x3, fault proxy, web-download source)")
set(openstack_dir ${CMAKE_BINARY_DIR}/openstack-services)
add_test(NAME openstack_emulators_start
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/openstack/emulators.py start --dir ${openstack_dir}
          --port-base ${CLOUD_HELPER_OPENSTACK_PORT_BASE})
add_test(NAME openstack_emulators_stop
  COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/openstack/emulators.py stop --dir ${openstack_dir})
set_tests_properties(openstack_emulators_start PROPERTIES FIXTURES_SETUP openstack TIMEOUT 240)
set_tests_properties(openstack_emulators_stop PROPERTIES FIXTURES_CLEANUP openstack TIMEOUT 30)
# The ids Keystone made (application credential, partner project) are only
# known once it ran: the tests read them from the env file start writes.
list(APPEND aws_test_env "CLOUD_HELPER_OS_ENV_FILE=${openstack_dir}/env")
list(APPEND test_fixtures openstack)
