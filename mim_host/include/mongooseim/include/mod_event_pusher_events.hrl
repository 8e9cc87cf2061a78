%% `-include_lib("mongooseim/include/mod_event_pusher_events.hrl")': the
%% application's own header (erlang/include), by its place in this tree.
-include("../../../../../erlang/include/mod_event_pusher_events.hrl").
