%% @doc The event pusher booted the way doc/compatibility.md §1 says MongooseIM boots, as
%% an acceptance suite written from doc/compatibility.md alone would do it: no helper of
%% ours, only MongooseIM's API, MongooseIM's headers by `include_lib', a raw
%% HTTP server of the suite's own that records the bytes it receives, and
%% MongooseIM's test helpers (`instrument_helper', `wait_helper',
%% `mongooseim_helper'). The `fresh_node' group boots in new peer nodes, where
%% nothing of the host runs before the first call.
-module(mongoose_boot_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("eunit/include/eunit.hrl").
-include_lib("exml/include/exml.hrl").
-include_lib("jid/include/jid.hrl").
-include("mongoose.hrl").
-include("mod_event_pusher_events.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([mongooseim_headers_come_from_include_lib/1,
         config_file_and_toml_text_parse_alike/1,
         chat_message_reaches_the_http_server_byte_exact/1,
         presence_hooks_push_user_status_events/1,
         second_boot_after_the_spec_shutdown_works/1,
         spec_boot_on_a_fresh_node_starts_the_host_itself/1,
         unit_test_style_start_links_mix_with_the_boot/1,
         unit_test_style_start_links_take_over_a_running_host/1]).
-export([mongooseim_headers_come_from_include_lib/0,
         config_file_and_toml_text_parse_alike/0,
         chat_message_reaches_the_http_server_byte_exact/0,
         presence_hooks_push_user_status_events/0,
         second_boot_after_the_spec_shutdown_works/0,
         spec_boot_on_a_fresh_node_starts_the_host_itself/0,
         unit_test_style_start_links_mix_with_the_boot/0,
         unit_test_style_start_links_take_over_a_running_host/0]).
%% run in the suite's own hook handler, the sink and peer nodes
-export([forward_push_event/3, send_chat/4, boot/1, shutdown/0,
         start_unit_test_style_processes/0, stop_unit_test_style_processes/0,
         sink_init/1]).

-dialyzer({nowarn_function, start_unit_test_style_processes/0}).

-define(HT, <<"localhost">>).
-define(SINK_TABLE, mongoose_boot_SUITE_requests).
-define(CHAT_TEXT, <<"Hi Test!&escape=Hello ~*ł"/utf8>>).
-define(CHAT_BODY, <<"author=alice&server=localhost&receiver=bob"
                    "&message=Hi+Test%21%26escape%3DHello+%7E%2A%C5%82">>).
-define(PEER_CALL_TIMEOUT, 60000).
-define(WAIT, #{time_left => 10000, sleep_time => 20}).

%%--------------------------------------------------------------------
%% Suite
%%--------------------------------------------------------------------

all() ->
    [mongooseim_headers_come_from_include_lib,
     config_file_and_toml_text_parse_alike,
     {group, booted},
     {group, fresh_node}].

groups() ->
    [{booted, [sequence], [chat_message_reaches_the_http_server_byte_exact,
                           presence_hooks_push_user_status_events,
                           second_boot_after_the_spec_shutdown_works]},
     {fresh_node, [], [spec_boot_on_a_fresh_node_starts_the_host_itself,
                       unit_test_style_start_links_mix_with_the_boot,
                       unit_test_style_start_links_take_over_a_running_host]}].

%% The node boots once here, exactly as doc/compatibility.md §1 says, from TOML text.
init_per_suite(Config) ->
    {Sink, Port} = start_sink(),
    instrument_helper:start(instrument_helper:declared_events(mod_event_pusher_http)),
    ok = boot(toml(Port, "/boot/")),
    [{sink, Sink}, {port, Port} | Config].

end_per_suite(Config) ->
    ok = shutdown(),
    instrument_helper:stop(),
    stop_sink(?config(sink, Config)).

init_per_group(_Group, Config) ->
    Config.

end_per_group(_Group, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%%--------------------------------------------------------------------
%% Cases
%%--------------------------------------------------------------------

mongooseim_headers_come_from_include_lib() ->
    [{doc, "exml/include/exml.hrl and jid/include/jid.hrl are found by include_lib, "
           "with exml 4's and jid's records."}].
mongooseim_headers_come_from_include_lib(_Config) ->
    ?assertEqual([name, attrs, children], record_info(fields, xmlel)),
    ?assertEqual([content, style], record_info(fields, xmlcdata)),
    ?assertEqual([luser, lserver, lresource], record_info(fields, jid)),
    #jid{luser = <<"alice">>, lserver = ?HT, lresource = <<"r">>} =
        jid:make(<<"alice">>, ?HT, <<"r">>),
    ?assertEqual(?HT, ?MYNAME),
    ?assertEqual(<<"en">>, ?MYLANG),
    ?assertEqual(undefined, ?MONGOOSE_VERSION).

config_file_and_toml_text_parse_alike() ->
    [{doc, "parse_file/1 reads a TOML file, and takes the TOML text itself too."}].
config_file_and_toml_text_parse_alike(Config) ->
    Toml = toml(?config(port, Config), "/file/"),
    Path = filename:join(?config(priv_dir, Config), "mongooseim.toml"),
    ok = file:write_file(Path, Toml),
    FromFile = mongoose_config_parser:parse_file(Path),
    ?assertEqual(FromFile, mongoose_config_parser:parse_file(Toml)),
    ?assertEqual(FromFile, mongoose_config_parser:parse_file(binary_to_list(Toml))),
    [#{type := http, scope := global, tag := http_pool,
       conn_opts := #{path_prefix := <<"/file/">>}}] = proplists:get_value(outgoing_pools, FromFile),
    ?assertError({config_error, _, [#{toml_path := _} | _]},
                 mongoose_config_parser:parse_file(<<"[general]\n  hosts = 3\n">>)).

chat_message_reaches_the_http_server_byte_exact() ->
    [{doc, "A chat message a client sends (user_send_message) is POSTed to "
           "host ++ path_prefix ++ path, form-encoded as cow_qs does, and instrumented."}].
chat_message_reaches_the_http_server_byte_exact(_Config) ->
    {ok, _} = send_chat(?HT, alice(), bob(), ?CHAT_TEXT),
    [{Head, Body}] = wait_for_requests(<<"/boot/notify">>, 1),
    ?assertEqual(<<"POST /boot/notify HTTP/1.1">>, request_line(Head)),
    ?assertEqual(<<"application/x-www-form-urlencoded">>, header(Head, <<"content-type">>)),
    ?assertEqual(?CHAT_BODY, Body),
    instrument_helper:wait_and_assert(
      mod_event_pusher_http_sent, #{host_type => ?HT},
      fun(#{count := 1, sender := <<"alice">>, response_code := <<"200">>,
            response_time := Time}) -> Time > 0
      end).

presence_hooks_push_user_status_events() ->
    [{doc, "user_available and unset_presence push online and offline user status "
           "events; a presence without type delivered locally is a normal out event."}].
presence_hooks_push_user_status_events(_Config) ->
    Handler = {push_event, ?HT, fun ?MODULE:forward_push_event/3, #{test_pid => self()}, 10},
    ok = gen_hook:add_handlers([Handler]),
    ok = gen_hook:reload_hooks(),
    try
        Alice = alice(),
        Presence = #xmlel{name = <<"presence">>},
        {ok, _} = gen_hook:run_fold(user_available, ?HT,
                                    new_acc(Alice, jid:to_bare(Alice), Presence),
                                    #{jid => Alice}),
        #user_status_event{jid = Alice, status = online} = receive_push_event(),
        Unavailable = Presence#xmlel{attrs = #{<<"type">> => <<"unavailable">>}},
        {ok, _} = gen_hook:run_fold(unset_presence, ?HT,
                                    new_acc(Alice, jid:to_bare(Alice), Unavailable),
                                    #{jid => Alice, status => <<"bye">>}),
        #user_status_event{jid = Alice, status = offline} = receive_push_event(),
        Bob = jid:make(<<"bob">>, ?HT, <<"res2">>),
        Routed = Presence#xmlel{attrs = #{<<"from">> => jid:to_binary(Alice),
                                          <<"to">> => jid:to_binary(Bob)}},
        {ok, _} = gen_hook:run_fold(filter_local_packet, ?HT,
                                    {Alice, Bob, new_acc(Alice, Bob, Routed), Routed}, #{}),
        #chat_event{type = normal, direction = out, from = Alice, to = Bob, packet = Routed} =
            receive_push_event()
    after
        ok = gen_hook:delete_handlers([Handler]),
        ok = gen_hook:reload_hooks()
    end.

second_boot_after_the_spec_shutdown_works() ->
    [{doc, "Shutting down as doc/compatibility.md §1 says and booting again in the same node "
           "works, twice, each boot with its own config."}].
second_boot_after_the_spec_shutdown_works(Config) ->
    Since = instrument_helper:timestamp(),
    lists:foreach(
      fun(N) ->
              Prefix = <<"/again", (integer_to_binary(N))/binary, "/">>,
              ok = shutdown(),
              ok = boot(toml(?config(port, Config), Prefix)),
              {ok, _} = send_chat(?HT, alice(), bob(), ?CHAT_TEXT),
              Path = <<Prefix/binary, "notify">>,
              [{Head, ?CHAT_BODY}] = wait_for_requests(Path, 1),
              ?assertEqual(<<"POST ", Path/binary, " HTTP/1.1">>, request_line(Head))
      end, [1, 2]),
    instrument_helper:assert(
      mod_event_pusher_http_sent, #{host_type => ?HT},
      fun(#{count := 1, response_code := <<"200">>}) -> true end,
      #{min_timestamp => Since, expected_count => 2, retries => 50, delay => 100}).

spec_boot_on_a_fresh_node_starts_the_host_itself() ->
    [{doc, "On a new node, each doc/compatibility.md §1 step in a process of its own (which exits): "
           "the host starts itself and outlives the callers."}].
spec_boot_on_a_fresh_node_starts_the_host_itself(Config) ->
    with_peer(
      fun(Peer) ->
              ?assertEqual(undefined, peer_call(Peer, erlang, whereis, [ejabberd_sup])),
              Toml = toml(?config(port, Config), "/fresh/"),
              Opts = peer_call(Peer, mongoose_config_parser, parse_file, [Toml]),
              ok = peer_call(Peer, mongoose_config, set_opts, [maps:from_list(Opts)]),
              [{ok, _}] = peer_call(Peer, mongoose_wpool, start_configured_pools, []),
              ok = peer_call(Peer, mongoose_modules, start, []),
              ok = peer_call(Peer, gen_hook, reload_hooks, []),
              {ok, _} = peer_call(Peer, ?MODULE, send_chat, [?HT, alice(), bob(), ?CHAT_TEXT]),
              [{_Head, ?CHAT_BODY}] = wait_for_requests(<<"/fresh/notify">>, 1),
              ok = peer_call(Peer, ?MODULE, shutdown, [])
      end).

unit_test_style_start_links_mix_with_the_boot() ->
    [{doc, "As in MongooseIM's unit tests, a process starts mongoose_instrument and "
           "gen_hook linked to itself before the boot; once it is gone, booting again "
           "starts the host's own."}].
unit_test_style_start_links_mix_with_the_boot(Config) ->
    with_peer(
      fun(Peer) ->
              Port = ?config(port, Config),
              {Instrument, Hooks} = peer_call(Peer, ?MODULE, start_unit_test_style_processes, []),
              ok = peer_call(Peer, ?MODULE, boot, [toml(Port, "/unit1/")]),
              %% the test's processes serve the boot
              ?assertEqual(Instrument, peer_call(Peer, erlang, whereis, [mongoose_instrument])),
              ?assertEqual(Hooks, peer_call(Peer, erlang, whereis, [gen_hook])),
              {ok, _} = peer_call(Peer, ?MODULE, send_chat, [?HT, alice(), bob(), ?CHAT_TEXT]),
              [{_, ?CHAT_BODY}] = wait_for_requests(<<"/unit1/notify">>, 1),
              ok = peer_call(Peer, ?MODULE, shutdown, []),
              ok = peer_call(Peer, ?MODULE, stop_unit_test_style_processes, []),
              ok = peer_call(Peer, ?MODULE, boot, [toml(Port, "/unit2/")]),
              NewHooks = peer_call(Peer, erlang, whereis, [gen_hook]),
              ?assert(is_pid(NewHooks) andalso NewHooks =/= Hooks),
              {ok, _} = peer_call(Peer, ?MODULE, send_chat, [?HT, alice(), bob(), ?CHAT_TEXT]),
              [{_, ?CHAT_BODY}] = wait_for_requests(<<"/unit2/notify">>, 1),
              ok = peer_call(Peer, ?MODULE, shutdown, [])
      end).

unit_test_style_start_links_take_over_a_running_host() ->
    [{doc, "start_link/0 of mongoose_instrument and gen_hook succeeds while the host "
           "runs (its own instances make way); booting again then works on them."}].
unit_test_style_start_links_take_over_a_running_host(Config) ->
    with_peer(
      fun(Peer) ->
              Port = ?config(port, Config),
              ok = peer_call(Peer, ?MODULE, boot, [toml(Port, "/take1/")]),
              HostHooks = peer_call(Peer, erlang, whereis, [gen_hook]),
              {_Instrument, Hooks} =
                  peer_call(Peer, ?MODULE, start_unit_test_style_processes, []),
              ?assertNotEqual(HostHooks, Hooks),
              ok = peer_call(Peer, ?MODULE, shutdown, []),
              ok = peer_call(Peer, ?MODULE, boot, [toml(Port, "/take2/")]),
              ?assertEqual(Hooks, peer_call(Peer, erlang, whereis, [gen_hook])),
              {ok, _} = peer_call(Peer, ?MODULE, send_chat, [?HT, alice(), bob(), ?CHAT_TEXT]),
              [{_, ?CHAT_BODY}] = wait_for_requests(<<"/take2/notify">>, 1),
              ok = peer_call(Peer, ?MODULE, shutdown, []),
              ok = peer_call(Peer, ?MODULE, stop_unit_test_style_processes, [])
      end).

%%--------------------------------------------------------------------
%% Boot and shutdown, as doc/compatibility.md §1 says
%%--------------------------------------------------------------------

-spec boot(binary()) -> ok.
boot(Toml) ->
    Opts = mongoose_config_parser:parse_file(Toml),
    ok = mongoose_config:set_opts(maps:from_list(Opts)),
    _ = mongoose_wpool:start_configured_pools(),
    ok = mongoose_modules:start(),
    ok = gen_hook:reload_hooks().

-spec shutdown() -> ok.
shutdown() ->
    ok = mongoose_modules:stop(),
    true = mongoose_config:erase_opts(),
    ok.

toml(Port, PathPrefix) ->
    iolist_to_binary(
      ["[general]\n"
       "  hosts = [\"localhost\"]\n"
       "  default_server_domain = \"localhost\"\n"
       "\n"
       "[outgoing_pools.http.http_pool]\n"
       "  workers = 2\n"
       "  connection.host = \"http://127.0.0.1:", integer_to_list(Port), "\"\n"
       "  connection.path_prefix = \"", PathPrefix, "\"\n"
       "\n"
       "[modules.mod_event_pusher.http]\n"
       "  handlers = [{path = \"notify\"}]\n"]).

%%--------------------------------------------------------------------
%% Stanzas and hooks
%%--------------------------------------------------------------------

alice() -> jid:make(<<"alice">>, ?HT, <<"res1">>).
bob() -> jid:make(<<"bob">>, ?HT, <<>>).

%% @doc A client's chat message (no `from') run through user_send_message.
-spec send_chat(binary(), jid:jid(), jid:jid(), binary()) -> {ok | stop, mongoose_acc:t()}.
send_chat(HostType, From, To, Text) ->
    El = #xmlel{name = <<"message">>,
                attrs = #{<<"to">> => jid:to_binary(To), <<"type">> => <<"chat">>},
                children = [#xmlel{name = <<"body">>, children = [#xmlcdata{content = Text}]}]},
    gen_hook:run_fold(user_send_message, HostType, new_acc(From, To, El), #{}).

new_acc(From = #jid{lserver = LServer}, To, El) ->
    mongoose_acc:new(#{location => ?LOCATION, lserver => LServer, host_type => ?HT,
                       element => El, from_jid => From, to_jid => To}).

%% @doc A push_event handler that sends each event to the test process.
-spec forward_push_event(map(), map(), map()) -> {ok, map()}.
forward_push_event(HookAcc, #{event := Event}, #{test_pid := Pid}) ->
    Pid ! {pushed, Event},
    {ok, HookAcc}.

%% The handler runs inside run_fold, so the message is already here.
receive_push_event() ->
    receive
        {pushed, Event} -> Event
    after 0 ->
            ct:fail(no_push_event)
    end.

%%--------------------------------------------------------------------
%% MongooseIM's unit-test style (run in a peer node)
%%--------------------------------------------------------------------

%% @doc Starts mongoose_instrument and gen_hook linked to a process that stays,
%% as MongooseIM's async_helper does.
-spec start_unit_test_style_processes() -> {pid(), pid()}.
start_unit_test_style_processes() ->
    Caller = self(),
    Pid = spawn(fun() ->
                        {ok, Instrument} = mongoose_instrument:start_link(),
                        {ok, Hooks} = mongooseim_helper:start_link_loaded_hooks(),
                        Caller ! {started, Instrument, Hooks},
                        hold_until_stopped()
                end),
    register(unit_test_style_owner, Pid),
    receive
        {started, Instrument, Hooks} -> {Instrument, Hooks}
    after 5000 ->
            error(unit_test_style_start_timeout)
    end.

%% Exiting takes the linked processes down with it (`shutdown': no crash report).
-spec hold_until_stopped() -> no_return().
hold_until_stopped() ->
    receive stop -> exit(shutdown) end.

-spec stop_unit_test_style_processes() -> ok.
stop_unit_test_style_processes() ->
    Owner = whereis(unit_test_style_owner),
    Watched = [Owner, whereis(gen_hook), whereis(mongoose_instrument)],
    MRefs = [monitor(process, Pid) || Pid <- Watched],
    Owner ! stop,
    [receive {'DOWN', MRef, process, _, _} -> ok end || MRef <- MRefs],
    ok.

%%--------------------------------------------------------------------
%% Peer nodes
%%--------------------------------------------------------------------

with_peer(Fun) ->
    Paths = [P || P <- code:get_path(), not lists:prefix(code:root_dir(), P)],
    {ok, Peer, _Node} = peer:start_link(#{connection => standard_io, args => ["-pa" | Paths]}),
    try
        Fun(Peer)
    after
        peer:stop(Peer)
    end.

peer_call(Peer, M, F, A) ->
    peer:call(Peer, M, F, A, ?PEER_CALL_TIMEOUT).

%%--------------------------------------------------------------------
%% A raw HTTP server recording what it receives
%%--------------------------------------------------------------------

%% Not linked to the caller: it serves every case of the suite.
start_sink() ->
    Caller = self(),
    Pid = spawn(?MODULE, sink_init, [Caller]),
    receive
        {sink_listening, Pid, Port} -> {Pid, Port}
    after 5000 ->
            ct:fail(sink_not_started)
    end.

stop_sink(Pid) ->
    MRef = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', MRef, process, Pid, _} -> ok end.

-spec sink_init(pid()) -> no_return().
sink_init(Caller) ->
    ets:new(?SINK_TABLE, [named_table, public, ordered_set]),
    {ok, Listen} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true},
                                      {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Listen),
    Caller ! {sink_listening, self(), Port},
    sink_accept(Listen).

sink_accept(Listen) ->
    {ok, Socket} = gen_tcp:accept(Listen),
    %% linked: killing the sink closes every connection
    Pid = spawn_link(fun() -> receive go -> sink_read(Socket, <<>>) end end),
    ok = gen_tcp:controlling_process(Socket, Pid),
    Pid ! go,
    sink_accept(Listen).

sink_read(Socket, Buffer) ->
    case binary:split(Buffer, <<"\r\n\r\n">>) of
        [Head, Rest] ->
            Length = content_length(Head),
            case Rest of
                <<Body:Length/binary, More/binary>> ->
                    ets:insert(?SINK_TABLE, {erlang:unique_integer([monotonic]), Head, Body}),
                    ok = gen_tcp:send(Socket, <<"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK">>),
                    sink_read(Socket, More);
                _ ->
                    sink_recv(Socket, Buffer)
            end;
        [_] ->
            sink_recv(Socket, Buffer)
    end.

sink_recv(Socket, Buffer) ->
    case gen_tcp:recv(Socket, 0) of
        {ok, Data} -> sink_read(Socket, <<Buffer/binary, Data/binary>>);
        {error, _} -> ok
    end.

content_length(Head) ->
    case header(Head, <<"content-length">>) of
        undefined -> 0;
        Value -> binary_to_integer(Value)
    end.

%% The requests to Path, oldest first, once there are N.
wait_for_requests(Path, N) ->
    {ok, Requests} = wait_helper:wait_until(fun() -> requests(Path) end, N,
                                            ?WAIT#{validator => fun(Rs) -> length(Rs) >= N end,
                                                   name => missing_requests}),
    Requests.

requests(Path) ->
    [{Head, Body} || {_, Head, Body} <- ets:tab2list(?SINK_TABLE),
                     element(2, split_request_line(Head)) =:= Path].

request_line(Head) ->
    hd(binary:split(Head, <<"\r\n">>)).

split_request_line(Head) ->
    case binary:split(request_line(Head), <<" ">>, [global]) of
        [Method, Path, Version] -> {Method, Path, Version};
        _ -> {undefined, undefined, undefined}
    end.

header(Head, Name) ->
    Lines = tl(binary:split(Head, <<"\r\n">>, [global])),
    Values = [string:trim(Value) || Line <- Lines,
                                    [Key, Value] <- [binary:split(Line, <<":">>)],
                                    string:lowercase(Key) =:= Name],
    case Values of
        [Value | _] -> Value;
        [] -> undefined
    end.
