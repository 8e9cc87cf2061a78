%% @doc Boots the emulated MongooseIM node from TOML text, the way MongooseIM
%% boots, and runs the hooks the event pusher listens to exactly as
%% MongooseIM's c2s and router run them.
-module(ep_test_host).

-include("jlib.hrl").

%% Node lifecycle
-export([general_toml/0, boot/1, shutdown/0, restart_modules/0, host_type/0]).

%% Stanzas, JIDs and accumulators
-export([jid/1, message/3, message/4, presence/1, with_from_to/3, new_acc/3]).

%% Our http pools (read through the product's pool registry)
-export([http_pool_stats/1, wait_http_pool_idle/2]).

%% Hooks, as MongooseIM runs them
-export([user_send_message/2, filter_local_packet/3, user_available/1,
         unset_presence/2, unacknowledged_message/2]).

-type hook_result(Acc) :: {ok | stop, Acc}.
-type filter_acc() :: {jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()}.
-export_type([hook_result/1, filter_acc/0]).

-define(HOST_TYPE, <<"localhost">>).

%%====================================================================
%% Node lifecycle
%%====================================================================

%% @doc The `[general]' section every suite's config starts with.
-spec general_toml() -> iodata().
general_toml() ->
    ["[general]\n",
     "  hosts = [\"", ?HOST_TYPE, "\"]\n",
     "  default_server_domain = \"", ?HOST_TYPE, "\"\n\n"].

%% @doc Parses `Toml' (written to a temporary file, as the node reads its
%% config), sets the options, starts the outgoing pools and the modules and
%% reloads the hook table. The host's top supervisor (gen_hook,
%% mongoose_instrument) is started first if it does not run yet, as it runs
%% in a started MongooseIM node.
-spec boot(iodata()) -> ok.
boot(Toml) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    Path = write_temp_config(Toml),
    try
        Opts = mongoose_config_parser:parse_file(Path),
        ok = mongoose_config:set_opts(maps:from_list(Opts)),
        _ = mongoose_wpool:start_configured_pools(),
        ok = mongoose_modules:start(),
        _ = gen_hook:reload_hooks(),
        ok
    catch
        Class:Reason:Stacktrace ->
            %% Undo what started, so that one failed boot does not fail the
            %% next case's boot too (pools and their events already there).
            undo_boot(),
            erlang:raise(Class, Reason, Stacktrace)
    after
        file:delete(Path)
    end.

%% @doc The reverse of `boot/1'; a no-op when no config is set (a case
%% may have shut down itself). The host's supervisor keeps running (its hook
%% table and instrumentation recordings outlive one config).
-spec shutdown() -> ok.
shutdown() ->
    case is_booted() of
        true ->
            ok = mongoose_modules:stop(),
            _ = gen_hook:reload_hooks(),
            _ = mongoose_wpool:stop(),
            _ = mongoose_config:erase_opts(),
            ok;
        false ->
            ok
    end.

%% Best effort: whatever part of the boot failed may not be there to stop.
undo_boot() ->
    _ = (catch mongoose_modules:stop()),
    _ = (catch gen_hook:reload_hooks()),
    _ = (catch mongoose_wpool:stop()),
    _ = (catch mongoose_config:erase_opts()),
    ok.

is_booted() ->
    try mongoose_config:get_opts() of
        _ -> true
    catch error:badarg -> false
    end.

%% @doc Stops and starts every configured module, keeping the config.
-spec restart_modules() -> ok.
restart_modules() ->
    ok = mongoose_modules:stop(),
    _ = gen_hook:reload_hooks(),
    ok = mongoose_modules:start(),
    _ = gen_hook:reload_hooks(),
    ok.

-spec host_type() -> binary().
host_type() ->
    ?HOST_TYPE.

write_temp_config(Toml) ->
    Dir = os:getenv("TMPDIR", "/tmp"),
    Name = io_lib:format("ep_test_host_~s_~p.toml",
                         [os:getpid(), erlang:unique_integer([positive])]),
    Path = filename:join(Dir, lists:flatten(Name)),
    ok = file:write_file(Path, Toml),
    Path.

%%====================================================================
%% Http pools
%%====================================================================

%% @doc The counters of the Rust pool behind outgoing http pool `Tag'
%% (host type first, then global), or `undefined' when it is not running.
-spec http_pool_stats(atom()) -> map() | undefined.
http_pool_stats(Tag) ->
    case mongoose_event_pusher_pool_registry:lookup(http, ?HOST_TYPE, Tag) of
        undefined -> undefined;
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    end.

%% @doc Waits until every job the pool accepted has finished (a final
%% response, or given up), so whatever was submitted has reached the server
%% or was dropped.
-spec wait_http_pool_idle(atom(), timeout()) -> ok.
wait_http_pool_idle(Tag, TimeoutMs) ->
    ep_wait:until(fun() -> is_idle(http_pool_stats(Tag)) end, TimeoutMs,
                  #{name => {http_pool_idle, Tag}}).

is_idle(Stats = #{submitted := Submitted, sent := Sent, dropped_retries_exhausted := Exhausted,
                  dropped_closed := Closed, queued := 0, in_flight := 0}) ->
    %% timeouts (outcome unknown) and dropped_expired end jobs too.
    Submitted =:= Sent + Exhausted + Closed + maps:get(timeouts, Stats, 0)
        + maps:get(dropped_expired, Stats, 0);
is_idle(_) ->
    false.

%%====================================================================
%% Stanzas, JIDs and accumulators
%%====================================================================

-spec jid(binary()) -> jid:jid().
jid(Bin) ->
    case jid:from_binary(Bin) of
        #jid{} = Jid -> Jid;
        error -> error({bad_jid, Bin})
    end.

%% @doc A client's message: `to' and optional `type', no `from' (the c2s
%% knows the sender). `Body = undefined' leaves out the `<body/>'.
-spec message(jid:jid(), binary() | undefined, binary() | undefined) -> exml:element().
message(To, Type, Body) ->
    message(To, Type, Body, []).

-spec message(jid:jid(), binary() | undefined, binary() | undefined, [exml:element()]) ->
    exml:element().
message(To, Type, Body, Extra) ->
    BodyEls = case Body of
                  undefined -> [];
                  _ -> [#xmlel{name = <<"body">>, children = [#xmlcdata{content = Body}]}]
              end,
    #xmlel{name = <<"message">>,
           attrs = type_attr(Type, #{<<"to">> => jid:to_binary(To)}),
           children = BodyEls ++ Extra}.

-spec presence(binary() | undefined) -> exml:element().
presence(Type) ->
    #xmlel{name = <<"presence">>, attrs = type_attr(Type, #{})}.

%% @doc The stanza as the router delivers it: with both `from' and `to'.
-spec with_from_to(exml:element(), jid:jid(), jid:jid()) -> exml:element().
with_from_to(El = #xmlel{attrs = Attrs}, From, To) ->
    El#xmlel{attrs = Attrs#{<<"from">> => jid:to_binary(From),
                            <<"to">> => jid:to_binary(To)}}.

%% @doc A fresh accumulator for `El' travelling from `From' to `To', on the
%% server of `From' (the c2s side).
-spec new_acc(jid:jid(), jid:jid(), exml:element()) -> mongoose_acc:t().
new_acc(From = #jid{lserver = LServer}, To, El) ->
    mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                     line => ?LINE, file => ?FILE},
                       lserver => LServer,
                       host_type => ?HOST_TYPE,
                       element => El,
                       from_jid => From,
                       to_jid => To}).

type_attr(undefined, Attrs) -> Attrs;
type_attr(Type, Attrs) -> Attrs#{<<"type">> => Type}.

%%====================================================================
%% Hooks
%%====================================================================

%% @doc The c2s of `From' received `El' (a message without `from') from its
%% client: `user_send_message' with the c2s hook params.
-spec user_send_message(jid:jid(), exml:element()) -> hook_result(mongoose_acc:t()).
user_send_message(From, El) ->
    To = jid(exml_query:attr(El, <<"to">>)),
    Acc = new_acc(From, To, El),
    gen_hook:run_fold(user_send_message, ?HOST_TYPE, Acc, c2s_params()).

%% @doc The router delivers `El' from `From' to the local `To':
%% `filter_local_packet' with `{From, To, Acc, Packet}' and no params.
-spec filter_local_packet(jid:jid(), jid:jid(), exml:element()) -> hook_result(filter_acc()).
filter_local_packet(From, To, El) ->
    Packet = with_from_to(El, From, To),
    Acc = new_acc(From, To, Packet),
    gen_hook:run_fold(filter_local_packet, ?HOST_TYPE, {From, To, Acc, Packet}, #{}).

%% @doc The session of `Jid' (full JID) sent its first available presence.
-spec user_available(jid:jid()) -> hook_result(mongoose_acc:t()).
user_available(Jid) ->
    Acc = new_acc(Jid, jid:to_bare(Jid), presence(undefined)),
    gen_hook:run_fold(user_available, ?HOST_TYPE, Acc, #{jid => Jid}).

%% @doc The session of `Jid' became unavailable with `Status'.
-spec unset_presence(jid:jid(), binary()) -> hook_result(mongoose_acc:t()).
unset_presence(Jid, Status) ->
    Acc = new_acc(Jid, jid:to_bare(Jid), presence(<<"unavailable">>)),
    gen_hook:run_fold(unset_presence, ?HOST_TYPE, Acc, #{jid => Jid, status => Status}).

%% @doc The session of `Jid' (full JID) is in resume state and holds
%% `Message' (as routed to it, with `from' and `to') unacknowledged.
-spec unacknowledged_message(jid:jid(), exml:element()) -> hook_result(mongoose_acc:t()).
unacknowledged_message(Jid, Message) ->
    From = jid(exml_query:attr(Message, <<"from">>)),
    Acc = new_acc(From, Jid, Message),
    gen_hook:run_fold(unacknowledged_message, ?HOST_TYPE, Acc, #{jid => Jid}).

%% What mongoose_c2s passes to its hooks; the event pusher does not read it.
c2s_params() ->
    #{c2s_data => undefined, c2s_state => session_established,
      event_type => undefined, event_content => undefined, reason => undefined}.
