/* Runs every unit suite.  CK_FORK, CK_VERBOSITY and CK_RUN_SUITE work as
 * Check documents. */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(cobs_suite());
    int failed;

    srunner_add_suite(sr, crc32c_suite());
    srunner_add_suite(sr, frame_suite());
    srunner_add_suite(sr, msg_suite());
    srunner_add_suite(sr, heap_suite());
    srunner_add_suite(sr, scenario_suite());
    srunner_add_suite(sr, fifo_suite());
    srunner_add_suite(sr, sampler_suite());
    srunner_add_suite(sr, fw_suite());
    srunner_add_suite(sr, sha256_suite());
    srunner_add_suite(sr, update_suite());
    srunner_add_suite(sr, boot_suite());
    srunner_add_suite(sr, fwupdate_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
