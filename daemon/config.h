/* tetherd's configuration: compiled-in defaults, then an INI file
 * (libinih), then command-line flags, each later source overriding the
 * earlier.  Every file key is also a flag: key "heap_low" in section
 * [alert] is --heap-low.  See docs/CONFIG.md and systemd/tetherd.conf.
 *
 * Errors name the file and line, or the flag, and what was expected. */
#ifndef TETHER_CONFIG_H
#define TETHER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifndef TETHER_VERSION
#define TETHER_VERSION "0.1.0" /* --version prints "tetherd 0.1.0" */
#endif

#define CONFIG_DEFAULT_FILE "/etc/tether/tetherd.conf"
#define CONFIG_ERR_MAX      512 /* size of the error buffers below */
#define CONFIG_COMMAND_MAX  1024
#define CONFIG_GROUP_MAX    256 /* a group name, with room to spare */

#define CONFIG_EINVAL -1 /* a bad value, key, flag or file; see err */
#define CONFIG_EXIT   -2 /* --help or --version was printed: exit 0 */

/* [flash] method: how firmware reaches the MCU (docs/UPDATE.md). */
enum config_flash_method {
    CONFIG_FLASH_UART,    /* UPD_* messages over the link */
    CONFIG_FLASH_OPENOCD, /* an OpenOCD command line, over SWD */
};

/* A span of the MCU's address space: [flash] openocd_erase.  len 0 is
 * none; otherwise addr + len - 1 fits in 32 bits. */
struct config_range {
    uint32_t addr;
    uint32_t len;
};

/* A threshold given either in bytes or in percent of the heap total. */
struct config_amount {
    uint32_t value;
    bool percent;
};

struct config {
    char file[PATH_MAX]; /* the INI file read, "" if none */
    /* [link] */
    char device[PATH_MAX];   /* /dev/ttyHS1 */
    uint32_t baud;           /* 115200 */
    bool rtscts;             /* false: no flow control */
    uint32_t stale_after_ms; /* 3000 */
    /* [store] */
    char db[PATH_MAX];        /* /var/lib/tether/tether.db */
    uint32_t commit_ms;       /* 100: commit at least this often */
    uint32_t commit_rows;     /* 1000: or after this many rows */
    uint32_t queue_rows;      /* 65536: writer queue bound */
    uint32_t raw_max_age_s;   /* 86400: raw samples kept */
    uint32_t raw_max_rows;    /* 20000000 */
    uint32_t rollup_1s_age_s; /* 30 days */
    uint32_t rollup_1m_age_s; /* 365 days */
    uint32_t max_size_mb;     /* 0: no size limit on the database file */
    /* [ring] */
    uint32_t ring_samples; /* 4096 per ADC channel */
    uint32_t ring_heap;    /* 1024 heap reports */
    /* [alert] */
    struct config_amount heap_low;        /* 10% */
    struct config_amount heap_hysteresis; /* 5% */
    uint32_t hold_off_s;                  /* 5: condition must last this long */
    uint32_t hold_off_reports;            /* 3: and over this many reports */
    uint32_t leak_window_s;               /* 60: trend window */
    uint32_t leak_horizon_s;              /* 600: alert if exhausted sooner */
    uint32_t leak_min_reports;            /* 10 */
    char alert_command[CONFIG_COMMAND_MAX]; /* "" = none */
    uint32_t alert_timeout_ms;              /* 10000 */
    /* [socket] (the query socket) */
    char socket[PATH_MAX];               /* /run/tether/tetherd.sock */
    char socket_group[CONFIG_GROUP_MAX]; /* "": the daemon's own group */
    char admin_group[CONFIG_GROUP_MAX];  /* "": only root may send */
    uint32_t request_timeout_ms;         /* 30000: to finish a line */
    /* [flash] (firmware update, docs/UPDATE.md) */
    int flash_method;          /* CONFIG_FLASH_UART */
    uint32_t flash_window;     /* 4 chunks in flight */
    uint32_t flash_timeout_ms; /* 1000: an answer to a request */
    uint32_t flash_retries;    /* 5 timeouts in a row */
    uint32_t flash_wait_ms;    /* 30000: erase, hash, reboot, lost link */
    uint32_t flash_health_s;   /* 5: the health gate */
    char openocd_command[CONFIG_COMMAND_MAX]; /* "openocd" */
    char openocd_config[CONFIG_COMMAND_MAX];  /* "": -f files */
    uint32_t openocd_address;                 /* 0x08000000 */
    uint32_t openocd_timeout_ms;              /* 120000 */
    struct config_range openocd_erase;        /* none: erase nothing first */
    /* [log] */
    int log_level; /* LOG_PRIO_INFO; -v gives debug */
};

/* What the command line asked for besides settings. */
struct config_cli {
    bool check_only; /* --check-config: validate, print, exit */
};

void config_defaults(struct config *c);

/* Fills c from defaults, the file (--config FILE, or CONFIG_DEFAULT_FILE
 * when it exists) and the flags.  Returns 0, CONFIG_EXIT, or CONFIG_EINVAL
 * with a message in err. */
int config_load(struct config *c, struct config_cli *cli, int argc, char **argv,
                char *err, size_t errlen);

/* Reads only the file named in c->file over c (SIGHUP); flags given at
 * start keep winning because the caller re-applies them. */
int config_reload(struct config *c, int argc, char **argv, char *err,
                  size_t errlen);

/* Prints the effective configuration as an INI file. */
void config_print(const struct config *c, FILE *out);

/* Bytes of a threshold for a heap of `total` bytes. */
uint32_t config_amount_bytes(const struct config_amount *a, uint32_t total);

#endif
