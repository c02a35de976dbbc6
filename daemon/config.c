/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "config.h"
#include "ipcbus/wire.h"

void bus_limits_init(struct bus_limits *limits)
{
        *limits = (struct bus_limits){
                .max_frame = IPCBUS_FRAME_PREFIX_SIZE + IPCBUS_CLIENT_HEADER_MAX + IPCBUS_BODY_MAX,
                .max_header = IPCBUS_CLIENT_HEADER_MAX,
                .max_body = IPCBUS_BODY_MAX,
                .max_fds = IPCBUS_FDS_MAX,
                .max_connections = 4096,
                .max_connections_per_uid = 2048,
                .max_names = 1024,
                .max_names_per_uid = 8192,
                .max_matches = 4096,
                .max_matches_per_uid = 65536,
                .max_pending = 16384,
                .max_pending_per_uid = 65536,
                .max_queue = 128u * 1024u * 1024u,
                .max_queue_per_uid = 512u * 1024u * 1024u,
                .backpressure = 1024u * 1024u,
                .hello_timeout_ms = 10000,
                .stall_timeout_ms = 30000,
                .reply_timeout_ms = 25000,
        };
}

void bus_config_init(struct bus_config *config)
{
        *config = (struct bus_config){.type = BUS_TYPE_SESSION};
        bus_limits_init(&config->limits);
        policy_init(&config->policy);
}

void bus_config_deinit(struct bus_config *config)
{
        for (size_t i = 0; i < config->n_listen; i++)
                free(config->listen[i]);
        free(config->listen);
        config->listen = NULL;
        config->n_listen = 0;
        policy_deinit(&config->policy);
}
