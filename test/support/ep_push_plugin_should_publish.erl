%% @doc A push plugin implementing only `should_publish/3': every enabled
%% service is notified, even when the recipient is online. Its other
%% callbacks fall back to the defaults plugin.
-module(ep_push_plugin_should_publish).
-behaviour(mod_event_pusher_push_plugin).

-export([should_publish/3]).

-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(_Acc, _Event, Services) ->
    Services.
