/*
 * The data of the user.message every publish benchmark sends: with
 * {"event":"user.message","data":...} around it, 644 bytes.
 */
#ifndef FLUXHOOK_BENCH_BODY_H
#define FLUXHOOK_BENCH_BODY_H

#define BENCH_EVENT_DATA                                                                           \
    "{\"conversation_id\":\"conv-1\","                                                             \
    "\"agent_id\":\"agent-7\",\"message_id\":\"msg-1\",\"user_id\":\"user-1\","                    \
    "\"content\":\"Hello, I need help with my order that arrived damaged. "                        \
    "The box was crushed on one side and the item inside is cracked along the "                    \
    "edge; I would like a replacement or a refund, whichever is quicker. The order "               \
    "number is on the packing slip and I can send photos of the damage if that "                   \
    "helps. Thank you for looking into this so quickly.\","                                        \
    "\"integration_id\":\"int-1\",\"integration_type\":\"crm\","                                   \
    "\"sync_type\":\"full\",\"records_synced\":5,\"status\":\"success\"}"

#endif
