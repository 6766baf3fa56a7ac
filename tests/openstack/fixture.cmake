# The OpenStack services (Debian's Keystone and three glance-api, plus the
# fault proxy and a static HTTP server as web-download source;
# tests/openstack/README.md): fixture "openstack", six loopback ports from
# CLOUD_HELPER_OPENSTACK_PORT_BASE. The databases are
# made once per port base and kept in the fixture directory, so only the
# first start of a build tree pays for keystone-manage and glance-manage.
set(CLOUD_HELPER_OPENSTACK_PORT_BASE 47600 CACHE STRING
    "First of the six loopback ports of the OpenStack test services (Keystone, Glance x3, fault proxy, web-download source)")
set(openstack_dir ${CMAKE_BINARY_DIR}/openstack-services)
cloud_helper_emulator_fixture(openstack ${openstack_dir} ${CLOUD_HELPER_OPENSTACK_PORT_BASE} 240)
# The ids Keystone made (application credential, partner project) are only
# known once it ran: the tests read them from the env file start writes.
list(APPEND aws_test_env "CLOUD_HELPER_OS_ENV_FILE=${openstack_dir}/env")
