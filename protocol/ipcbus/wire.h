/* SPDX-License-Identifier: MIT */
/*
 * ipcbus wire constants: the names, codes and limits of protocol/PROTOCOL.md.
 *
 * This header is installed as <ipcbus/wire.h> and included by <ipcbus/ipcbus.h>,
 * so the daemon, the client library, the tools and outside programs share one
 * definition of every name on the wire.
 */
#pragma once

/* Framing (PROTOCOL.md, "Framing"). */
#define IPCBUS_PROTOCOL_VERSION 1
#define IPCBUS_FRAME_MAGIC "IPCB"
#define IPCBUS_FRAME_PREFIX_SIZE 16

/* Limits (PROTOCOL.md, "Limits"). A client's header is smaller than the
 * largest header by the room the broker needs to stitch in the sender fields,
 * so that whatever it accepts it can forward. */
#define IPCBUS_HEADER_MAX (64u * 1024u)
#define IPCBUS_STAMP_RESERVE 1024u
#define IPCBUS_CLIENT_HEADER_MAX (IPCBUS_HEADER_MAX - IPCBUS_STAMP_RESERVE)
#define IPCBUS_BODY_MAX (64u * 1024u * 1024u)
#define IPCBUS_DEPTH_MAX 64u
#define IPCBUS_FDS_MAX 16u
#define IPCBUS_NAME_MAX 255u
#define IPCBUS_PATH_MAX 1024u

/* The bus driver. */
#define IPCBUS_DRIVER_NAME "org.ipcbus.Bus"
#define IPCBUS_DRIVER_PATH "/org/ipcbus/Bus"
#define IPCBUS_DRIVER_INTERFACE "org.ipcbus.Bus"

/* Answered by every peer, the driver included, on any path (PROTOCOL.md 10.1). */
#define IPCBUS_PEER_INTERFACE "org.ipcbus.Peer"

/* The standard interfaces (PROTOCOL.md 13.4). */
#define IPCBUS_INTROSPECTABLE_INTERFACE "org.ipcbus.Introspectable"
#define IPCBUS_PROPERTIES_INTERFACE "org.ipcbus.Properties"
#define IPCBUS_OBJECT_MANAGER_INTERFACE "org.ipcbus.ObjectManager"

/* RequestName flags (body member "flags" is an integer bitmask, as in D-Bus). */
#define IPCBUS_NAME_ALLOW_REPLACEMENT 0x1u
#define IPCBUS_NAME_REPLACE_EXISTING 0x2u
#define IPCBUS_NAME_DO_NOT_QUEUE 0x4u

/* RequestName results. */
#define IPCBUS_REQUEST_NAME_PRIMARY_OWNER 1
#define IPCBUS_REQUEST_NAME_IN_QUEUE 2
#define IPCBUS_REQUEST_NAME_EXISTS 3
#define IPCBUS_REQUEST_NAME_ALREADY_OWNER 4

/* ReleaseName results. */
#define IPCBUS_RELEASE_NAME_RELEASED 1
#define IPCBUS_RELEASE_NAME_NON_EXISTENT 2
#define IPCBUS_RELEASE_NAME_NOT_OWNER 3

/* StartServiceByName results. */
#define IPCBUS_START_REPLY_SUCCESS 1
#define IPCBUS_START_REPLY_ALREADY_RUNNING 2

/* Standard error names (PROTOCOL.md, "Errors"). */
#define IPCBUS_ERROR_FAILED "org.ipcbus.Error.Failed"
#define IPCBUS_ERROR_NO_MEMORY "org.ipcbus.Error.NoMemory"
#define IPCBUS_ERROR_SERVICE_UNKNOWN "org.ipcbus.Error.ServiceUnknown"
#define IPCBUS_ERROR_NAME_HAS_NO_OWNER "org.ipcbus.Error.NameHasNoOwner"
#define IPCBUS_ERROR_NO_REPLY "org.ipcbus.Error.NoReply"
#define IPCBUS_ERROR_TIMEOUT "org.ipcbus.Error.Timeout"
#define IPCBUS_ERROR_ACCESS_DENIED "org.ipcbus.Error.AccessDenied"
#define IPCBUS_ERROR_INVALID_ARGS "org.ipcbus.Error.InvalidArgs"
#define IPCBUS_ERROR_INVALID_MESSAGE "org.ipcbus.Error.InvalidMessage"
#define IPCBUS_ERROR_PROTOCOL "org.ipcbus.Error.ProtocolError"
#define IPCBUS_ERROR_UNKNOWN_METHOD "org.ipcbus.Error.UnknownMethod"
#define IPCBUS_ERROR_UNKNOWN_OBJECT "org.ipcbus.Error.UnknownObject"
#define IPCBUS_ERROR_UNKNOWN_INTERFACE "org.ipcbus.Error.UnknownInterface"
#define IPCBUS_ERROR_UNEXPECTED_REPLY "org.ipcbus.Error.UnexpectedReply"
#define IPCBUS_ERROR_MATCH_RULE_INVALID "org.ipcbus.Error.MatchRuleInvalid"
#define IPCBUS_ERROR_MATCH_RULE_NOT_FOUND "org.ipcbus.Error.MatchRuleNotFound"
#define IPCBUS_ERROR_LIMITS_EXCEEDED "org.ipcbus.Error.LimitsExceeded"
#define IPCBUS_ERROR_NOT_SUPPORTED "org.ipcbus.Error.NotSupported"
#define IPCBUS_ERROR_DISCONNECTED "org.ipcbus.Error.Disconnected"
#define IPCBUS_ERROR_CONFIG_INVALID "org.ipcbus.Error.ConfigInvalid"
#define IPCBUS_ERROR_UNKNOWN_PROPERTY "org.ipcbus.Error.UnknownProperty"
#define IPCBUS_ERROR_PROPERTY_READ_ONLY "org.ipcbus.Error.PropertyReadOnly"
/* Service activation failed (PROTOCOL.md 7.5). */
#define IPCBUS_ERROR_SPAWN_EXEC_FAILED "org.ipcbus.Error.Spawn.ExecFailed"
#define IPCBUS_ERROR_SPAWN_FAILED_TO_SETUP "org.ipcbus.Error.Spawn.FailedToSetup"
#define IPCBUS_ERROR_SPAWN_CHILD_EXITED "org.ipcbus.Error.Spawn.ChildExited"
#define IPCBUS_ERROR_SPAWN_CHILD_SIGNALED "org.ipcbus.Error.Spawn.ChildSignaled"
#define IPCBUS_ERROR_SPAWN_UNIT_FAILED "org.ipcbus.Error.Spawn.UnitFailed"
#define IPCBUS_ERROR_SPAWN_TIMEOUT "org.ipcbus.Error.Spawn.Timeout"
