#include <stdlib.h>
#include <string.h>

#include "events/event.h"

void
event_cleanup(struct event *ev)
{
    if (ev == NULL)
        return;
    free(ev->body);
    memset(ev, 0, sizeof(*ev));
}
