/* The unit suites, one per module; test_main.c runs them all. */
#ifndef TETHER_TEST_SUITES_H
#define TETHER_TEST_SUITES_H

#include <check.h>

Suite *cobs_suite(void);
Suite *crc32c_suite(void);
Suite *frame_suite(void);
Suite *msg_suite(void);
Suite *heap_suite(void);
Suite *scenario_suite(void);
Suite *fifo_suite(void);
Suite *sampler_suite(void);
Suite *fw_suite(void);
Suite *sha256_suite(void);
Suite *update_suite(void);
Suite *boot_suite(void);
Suite *fwupdate_suite(void);

#endif
