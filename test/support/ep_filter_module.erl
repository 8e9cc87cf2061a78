%% @doc A user filter for the push_event hook, as a MongooseIM deployment
%% would write one: it runs before the backends (priority 10), stops every
%% event except presences (status events and presence stanzas) and messages
%% marked with an `<ep-pass/>' child, and adds metadata to what it lets through.
-module(ep_filter_module).

-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-export([hooks/1, add/1, remove/1, push_event/3]).

-define(MARK, <<"ep-pass">>).

-spec hooks(binary()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{push_event, HostType, fun ?MODULE:push_event/3, #{}, 10}].

-spec add(binary()) -> ok.
add(HostType) ->
    _ = gen_hook:add_handlers(hooks(HostType)),
    _ = gen_hook:reload_hooks(),
    ok.

-spec remove(binary()) -> ok.
remove(HostType) ->
    _ = gen_hook:delete_handlers(hooks(HostType)),
    _ = gen_hook:reload_hooks(),
    ok.

-spec push_event(map(), #{event := term()}, map()) -> {ok | stop, map()}.
push_event(HookAcc = #{metadata := Metadata}, #{event := Event}, _Extra) ->
    case kind(Event) of
        drop ->
            {stop, HookAcc};
        Kind ->
            {ok, HookAcc#{metadata := Metadata#{filtered_by => ?MODULE, kind => Kind,
                                                 version => 1}}}
    end.

kind(#user_status_event{}) -> status;
kind(#chat_event{packet = #xmlel{name = <<"presence">>}}) -> presence;
kind(#chat_event{packet = #xmlel{children = Children}}) ->
    case lists:keymember(?MARK, #xmlel.name, Children) of
        true -> marked_message;
        false -> drop
    end;
kind(_) -> drop.
