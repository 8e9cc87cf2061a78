%% @doc The options of `[modules.mod_event_pusher.rabbit]' and
%% `[outgoing_pools.rabbit.*]' are accepted, defaulted and rejected as
%% MongooseIM does (doc/compatibility.md §5), each error naming the option's TOML path; and
%% a rabbit pool entry becomes the Rust pool's configuration.
-module(mod_event_pusher_rabbit_config_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

%% The TOML parsing and error picking shared by the config suites.
-import(ep_config_check, [general/0, modules/2, pools/2, parse/2, the_error/2, opt/2,
                          path_and_reason/1]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1]).

-export([rabbit_backend_without_exchanges_has_none/1,
         empty_exchanges_get_mongooseim_defaults/1,
         only_configured_exchanges_are_present/1,
         every_exchange_option_is_accepted/1,
         topics_keep_their_defaults_when_the_name_changes/1,
         backend_module_gets_the_backend_options/1,
         host_config_sets_exchanges_for_its_host_type/1,
         empty_strings_are_rejected/1,
         wrong_option_types_are_rejected/1,
         presence_exchange_has_no_topics/1,
         unknown_exchange_or_option_is_rejected/1,
         wire_options_are_accepted_without_defaults/1,
         bad_wire_options_are_rejected/1,
         spool_section_gets_its_defaults/1,
         bad_spool_options_are_rejected/1,
         spool_reaches_the_rust_pool_config/1]).
-export([pool_gets_mongooseim_defaults/1,
         every_pool_option_is_accepted/1,
         bad_connection_options_are_rejected/1,
         bad_generic_pool_options_are_rejected/1,
         host_config_pool_belongs_to_its_host_type/1,
         pool_entry_becomes_the_rust_pool_config/1,
         host_type_pool_reports_under_its_host_type/1,
         tls_section_is_passed_to_the_rust_pool/1]).

-define(RABBIT, "modules.mod_event_pusher.rabbit").
-define(CONN, "outgoing_pools.rabbit.event_pusher.connection").

%%====================================================================
%% Setup
%%====================================================================

all() ->
    [{group, module_options}, {group, pool_options}, {group, spool_pool}].

groups() ->
    [{module_options, [parallel], [rabbit_backend_without_exchanges_has_none,
                                   empty_exchanges_get_mongooseim_defaults,
                                   only_configured_exchanges_are_present,
                                   every_exchange_option_is_accepted,
                                   topics_keep_their_defaults_when_the_name_changes,
                                   backend_module_gets_the_backend_options,
                                   host_config_sets_exchanges_for_its_host_type,
                                   empty_strings_are_rejected,
                                   wrong_option_types_are_rejected,
                                   presence_exchange_has_no_topics,
                                   unknown_exchange_or_option_is_rejected,
                                   wire_options_are_accepted_without_defaults,
                                   bad_wire_options_are_rejected,
                                   spool_section_gets_its_defaults,
                                   bad_spool_options_are_rejected]},
     %% Sets the node's config: not in parallel with the other groups.
     {spool_pool, [], [spool_reaches_the_rust_pool_config]},
     {pool_options, [parallel], [pool_gets_mongooseim_defaults,
                                 every_pool_option_is_accepted,
                                 bad_connection_options_are_rejected,
                                 bad_generic_pool_options_are_rejected,
                                 host_config_pool_belongs_to_its_host_type,
                                 pool_entry_becomes_the_rust_pool_config,
                                 host_type_pool_reports_under_its_host_type,
                                 tls_section_is_passed_to_the_rust_pool]}].

init_per_suite(Config) ->
    Dir = ?config(priv_dir, Config),
    Files = [{F, filename:join(Dir, F)} || F <- ["ca.pem", "cert.pem", "key.pem"]],
    [ok = file:write_file(Path, <<"test\n">>) || {_, Path} <- Files],
    [{tls_files, maps:from_list(Files)} | Config].

end_per_suite(_Config) ->
    ok.

%%====================================================================
%% [modules.mod_event_pusher.rabbit]
%%====================================================================

spool_section_gets_its_defaults(doc) ->
    ["(ours) The spool section needs directory and max_bytes; fsync defaults to interval, "
     "1000 ms; without the section there is no spool option"];
spool_section_gets_its_defaults(Config) ->
    ?assertEqual(#{spool => #{directory => "/var/spool/ep", max_bytes => 1000000,
                              fsync => interval, fsync_interval => 1000}},
                 rabbit_opts(Config, exchanges_toml([{"spool", "directory = \"/var/spool/ep\"\n"
                                                               "max_bytes = 1000000"}]))),
    ?assertEqual(#{spool => #{directory => "d", max_bytes => 1, fsync => never,
                              fsync_interval => 5}},
                 rabbit_opts(Config, exchanges_toml([{"spool", "directory = \"d\"\n"
                                                               "max_bytes = 1\nfsync = \"never\"\n"
                                                               "fsync_interval = 5"}]))),
    ?assertEqual(#{}, rabbit_opts(Config, "[modules.mod_event_pusher.rabbit]\n")).

bad_spool_options_are_rejected(doc) ->
    ["(ours) Bad spool values are rejected naming the option's path"];
bad_spool_options_are_rejected(Config) ->
    Ok = #{"directory" => "\"d\"", "max_bytes" => "10"},
    Spool = fun(Opts) -> [[K, " = ", V, "\n"] || {K, V} <- maps:to_list(Opts)] end,
    [?assertMatch(#{toml_path := ?RABBIT ".spool." ++ Key},
                  exchange_error(Config, "spool", Spool(Ok#{Key => Value})))
     || {Key, Value} <- [{"directory", "\"\""}, {"directory", "1"},
                         {"max_bytes", "0"}, {"max_bytes", "\"big\""},
                         {"fsync", "\"sometimes\""}, {"fsync_interval", "0"}]],
    ?assertMatch(#{toml_path := ?RABBIT ".spool", reason := missing_mandatory_keys,
                   missing_keys := [<<"max_bytes">>]},
                 exchange_error(Config, "spool", Spool(maps:remove("max_bytes", Ok)))),
    ?assertMatch(#{toml_path := ?RABBIT ".spool", reason := unexpected_key},
                 exchange_error(Config, "spool", Spool(Ok#{"when_full" => "\"drop\""}))).

spool_reaches_the_rust_pool_config(doc) ->
    ["(ours) A rabbit pool gets the spool of the module using it, in a directory of its "
     "own; without a spool section, no spool key"];
spool_reaches_the_rust_pool_config(Config) ->
    Toml = [general(), pool_toml("", ""),
            exchanges_toml([{"spool", "directory = \"/tmp/ep\"\nmax_bytes = 4096\n"
                                      "fsync_interval = 20"}])],
    Path = filename:join(?config(priv_dir, Config), "spool.toml"),
    ok = file:write_file(Path, Toml),
    ok = mongoose_config:set_opts(maps:from_list(mongoose_config_parser:parse_file(Path))),
    try
        [Entry] = mongoose_config:get_opt(outgoing_pools),
        {ok, {_, rabbit_pool_start, [#{spool := Spool}]}} =
            mongoose_event_pusher_nif_config:start_spec({rabbit, global, event_pusher}, Entry),
        ?assertEqual(#{dir => <<"/tmp/ep/rabbit-event_pusher">>, max_bytes => 4096,
                       fsync => {interval, 20}}, Spool),
        {ok, {_, rabbit_pool_start, [#{spool := #{dir := HostTypeDir}}]}} =
            mongoose_event_pusher_nif_config:start_spec({rabbit, <<"localhost">>, event_pusher},
                                                         Entry),
        ?assertEqual(<<"/tmp/ep/rabbit-localhost-event_pusher">>, HostTypeDir)
    after
        mongoose_config:erase_opts()
    end.

rabbit_backend_without_exchanges_has_none(doc) ->
    ["A rabbit backend with no exchange sections has no exchange options at all"];
rabbit_backend_without_exchanges_has_none(Config) ->
    ?assertEqual(#{}, rabbit_opts(Config, "[modules.mod_event_pusher.rabbit]\n")).

empty_exchanges_get_mongooseim_defaults(doc) ->
    ["Empty exchange sections get MongooseIM's names, type topic, non-durable and fixed topics"];
empty_exchanges_get_mongooseim_defaults(Config) ->
    ?assertEqual(#{presence_exchange => #{name => <<"presence">>, type => <<"topic">>,
                                          durable => false},
                   chat_msg_exchange => #{name => <<"chat_msg">>, type => <<"topic">>,
                                          durable => false,
                                          sent_topic => <<"chat_msg_sent">>,
                                          recv_topic => <<"chat_msg_recv">>},
                   groupchat_msg_exchange => #{name => <<"groupchat_msg">>,
                                               type => <<"topic">>, durable => false,
                                               sent_topic => <<"groupchat_msg_sent">>,
                                               recv_topic => <<"groupchat_msg_recv">>}},
                 rabbit_opts(Config, exchanges_toml([{"presence_exchange", ""},
                                                     {"chat_msg_exchange", ""},
                                                     {"groupchat_msg_exchange", ""}]))).

only_configured_exchanges_are_present(doc) ->
    ["Only the exchanges given in the config appear in the options"];
only_configured_exchanges_are_present(Config) ->
    ?assertEqual([presence_exchange],
                 maps:keys(rabbit_opts(Config, exchanges_toml([{"presence_exchange", ""}])))),
    ?assertEqual([groupchat_msg_exchange],
                 maps:keys(rabbit_opts(Config,
                                       exchanges_toml([{"groupchat_msg_exchange", ""}])))).

every_exchange_option_is_accepted(doc) ->
    ["Every exchange option is accepted and kept as a binary or boolean"];
every_exchange_option_is_accepted(Config) ->
    Toml = exchanges_toml(
             [{"presence_exchange", "name = \"pres\"\ntype = \"fanout\"\ndurable = true"},
              {"chat_msg_exchange", "name = \"chats\"\ntype = \"direct\"\ndurable = true\n"
                                    "sent_topic = \"out\"\nrecv_topic = \"in\""},
              {"groupchat_msg_exchange", "name = \"rooms\"\ntype = \"headers\"\n"
                                         "durable = false\n"
                                         "sent_topic = \"g_out\"\nrecv_topic = \"g_in\""}]),
    ?assertEqual(#{presence_exchange => #{name => <<"pres">>, type => <<"fanout">>,
                                          durable => true},
                   chat_msg_exchange => #{name => <<"chats">>, type => <<"direct">>,
                                          durable => true, sent_topic => <<"out">>,
                                          recv_topic => <<"in">>},
                   groupchat_msg_exchange => #{name => <<"rooms">>, type => <<"headers">>,
                                               durable => false, sent_topic => <<"g_out">>,
                                               recv_topic => <<"g_in">>}},
                 rabbit_opts(Config, Toml)).

topics_keep_their_defaults_when_the_name_changes(doc) ->
    ["sent_topic and recv_topic default to chat_msg_* and groupchat_msg_* whatever the name"];
topics_keep_their_defaults_when_the_name_changes(Config) ->
    Opts = rabbit_opts(Config, exchanges_toml([{"chat_msg_exchange", "name = \"custom\""},
                                               {"groupchat_msg_exchange",
                                                "name = \"custom_room\""}])),
    ?assertMatch(#{chat_msg_exchange := #{name := <<"custom">>,
                                          sent_topic := <<"chat_msg_sent">>,
                                          recv_topic := <<"chat_msg_recv">>},
                   groupchat_msg_exchange := #{name := <<"custom_room">>,
                                               sent_topic := <<"groupchat_msg_sent">>,
                                               recv_topic := <<"groupchat_msg_recv">>}},
                 Opts).

backend_module_gets_the_backend_options(doc) ->
    ["mod_event_pusher depends on mod_event_pusher_rabbit, which gets the rabbit options"];
backend_module_gets_the_backend_options(Config) ->
    Modules = modules(Config, exchanges_toml([{"presence_exchange", "name = \"p\""}])),
    RabbitOpts = #{presence_exchange => #{name => <<"p">>, type => <<"topic">>,
                                          durable => false}},
    ?assertEqual(#{mod_event_pusher => #{rabbit => RabbitOpts},
                   mod_event_pusher_rabbit => RabbitOpts},
                 Modules).

host_config_sets_exchanges_for_its_host_type(doc) ->
    ["A host_config section configures the rabbit backend of its host type only"];
host_config_sets_exchanges_for_its_host_type(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
                          exchanges_toml([{"presence_exchange", ""}]),
                          "[[host_config]]\nhost_type = \"b\"\n",
                          "[host_config.modules.mod_event_pusher.rabbit.chat_msg_exchange]\n"
                          "name = \"b_chat\"\n"]),
    ?assertMatch(#{mod_event_pusher := #{rabbit := #{presence_exchange := _}}},
                 opt({modules, <<"a">>}, Opts)),
    #{mod_event_pusher := #{rabbit := BOpts}, mod_event_pusher_rabbit := BOpts} =
        opt({modules, <<"b">>}, Opts),
    ?assertMatch([chat_msg_exchange], maps:keys(BOpts)),
    ?assertMatch(#{chat_msg_exchange := #{name := <<"b_chat">>}}, BOpts).

empty_strings_are_rejected(doc) ->
    ["An empty name, type, sent_topic or recv_topic is rejected, naming its path"];
empty_strings_are_rejected(Config) ->
    [?assertEqual({Path, function_clause},
                  path_and_reason(exchange_error(Config, Exchange, [Key, " = \"\""])))
     || {Exchange, Key} <- [{"presence_exchange", "name"}, {"presence_exchange", "type"},
                            {"chat_msg_exchange", "name"}, {"chat_msg_exchange", "sent_topic"},
                            {"chat_msg_exchange", "recv_topic"},
                            {"groupchat_msg_exchange", "type"},
                            {"groupchat_msg_exchange", "sent_topic"},
                            {"groupchat_msg_exchange", "recv_topic"}],
        Path <- [?RABBIT "." ++ Exchange ++ "." ++ Key]].

wrong_option_types_are_rejected(doc) ->
    ["Options of the wrong TOML type are rejected, naming their path"];
wrong_option_types_are_rejected(Config) ->
    [?assertEqual({?RABBIT "." ++ Exchange ++ "." ++ Key, wrong_type},
                  path_and_reason(exchange_error(Config, Exchange, [Key, " = ", Value])))
     || {Exchange, Key, Value} <- [{"presence_exchange", "name", "1"},
                                   {"presence_exchange", "type", "true"},
                                   {"presence_exchange", "durable", "\"yes\""},
                                   {"chat_msg_exchange", "sent_topic", "1"},
                                   {"groupchat_msg_exchange", "recv_topic", "1"}]].

presence_exchange_has_no_topics(doc) ->
    ["sent_topic and recv_topic belong to the message exchanges only"];
presence_exchange_has_no_topics(Config) ->
    ?assertMatch(#{toml_path := ?RABBIT ".presence_exchange", reason := unexpected_key,
                   key := <<"sent_topic">>},
                 exchange_error(Config, "presence_exchange", "sent_topic = \"x\"")).

unknown_exchange_or_option_is_rejected(doc) ->
    ["An unknown exchange section or exchange option is rejected"];
unknown_exchange_or_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?RABBIT, reason := unexpected_key,
                   key := <<"headline_exchange">>},
                 exchange_error(Config, "headline_exchange", "name = \"h\"")),
    ?assertMatch(#{toml_path := ?RABBIT ".chat_msg_exchange", reason := unexpected_key,
                   key := <<"auto_delete">>},
                 exchange_error(Config, "chat_msg_exchange", "auto_delete = true")),
    ?assertMatch(#{toml_path := ?RABBIT ".presence_exchange", reason := wrong_node_type},
                 the_error(Config, [general(), "[modules.mod_event_pusher.rabbit]\n"
                                               "presence_exchange = \"presence\"\n"])).

wire_options_are_accepted_without_defaults(doc) ->
    ["(ours) event_properties, persistent, mandatory and unroutable_retry_time_ms are "
     "kept as given; absent, they are not in the options (MongooseIM's stay as they are)"];
wire_options_are_accepted_without_defaults(Config) ->
    Toml = ["[modules.mod_event_pusher.rabbit]
"
            "event_properties = true
persistent = false
mandatory = true
"
            "unroutable_retry_time_ms = 0
"],
    ?assertEqual(#{event_properties => true, persistent => false, mandatory => true,
                   unroutable_retry_time_ms => 0},
                 rabbit_opts(Config, Toml)).

bad_wire_options_are_rejected(doc) ->
    ["(ours) A wire option of the wrong type or a negative retry time is rejected, "
     "naming its path"];
bad_wire_options_are_rejected(Config) ->
    [?assertEqual({?RABBIT "." ++ Key, Reason},
                  path_and_reason(the_error(Config, [general(),
                                                     "[modules.mod_event_pusher.rabbit]
",
                                                     Key, " = ", Value, "
"])))
     || {Key, Value, Reason} <- [{"event_properties", "\"yes\"", wrong_type},
                                 {"persistent", "1", wrong_type},
                                 {"mandatory", "\"true\"", wrong_type},
                                 {"unroutable_retry_time_ms", "true", wrong_type},
                                 {"unroutable_retry_time_ms", "-1", function_clause}]].

%%====================================================================
%% [outgoing_pools.rabbit.*]
%%====================================================================

pool_gets_mongooseim_defaults(doc) ->
    ["A pool with no options gets MongooseIM's connection and worker pool defaults"];
pool_gets_mongooseim_defaults(Config) ->
    ?assertEqual([#{type => rabbit, scope => global, tag => event_pusher,
                    opts => #{workers => 10, strategy => best_worker, call_timeout => 5000},
                    conn_opts => #{host => "localhost", port => 5672,
                                   username => <<"guest">>, password => <<"guest">>,
                                   virtual_host => <<"/">>, confirms_enabled => false,
                                   reconnect => #{attempts => 0, delay => 2000}}}],
                 pools(Config, "[outgoing_pools.rabbit.event_pusher]\n")).

every_pool_option_is_accepted(doc) ->
    ["Every connection, reconnect, TLS and worker pool option is accepted"];
every_pool_option_is_accepted(Config) ->
    #{"ca.pem" := CA, "cert.pem" := Cert, "key.pem" := Key} = ?config(tls_files, Config),
    Toml = pool_toml("workers = 3\nstrategy = \"best_worker\"\ncall_timeout = 100\n"
                     "max_worker_queue_len = 500\nscope = \"host_type\"",
                     ["host = \"rabbit.example.com\"\nport = 5671\n"
                      "username = \"pusher\"\npassword = \"secret\"\n"
                      "virtual_host = \"vh1\"\nconfirms_enabled = true\n"
                      "reconnect.attempts = 5\nreconnect.delay = 100\n"
                      "tls.verify_mode = \"peer\"\n"
                      "tls.cacertfile = '", CA, "'\n"
                      "tls.certfile = '", Cert, "'\n"
                      "tls.keyfile = '", Key, "'\n"
                      "tls.versions = [\"tlsv1.2\"]\n"]),
    ?assertEqual([#{type => rabbit, scope => host_type, tag => event_pusher,
                    opts => #{workers => 3, strategy => best_worker, call_timeout => 100,
                              max_worker_queue_len => 500},
                    conn_opts => #{host => "rabbit.example.com", port => 5671,
                                   username => <<"pusher">>, password => <<"secret">>,
                                   virtual_host => <<"vh1">>, confirms_enabled => true,
                                   reconnect => #{attempts => 5, delay => 100},
                                   tls => #{verify_mode => peer, cacertfile => CA,
                                            certfile => Cert, keyfile => Key,
                                            versions => ['tlsv1.2'],
                                            disconnect_on_failure => true,
                                            crl_files => [],
                                            server_name_indication =>
                                                #{enabled => true, protocol => default}}}}],
                 pools(Config, Toml)).

bad_connection_options_are_rejected(doc) ->
    ["Empty strings, ports outside 0..65535, negative reconnect values and wrong types "
     "are rejected (port 0 passes, as in MongooseIM, and fails the pool start)"];
bad_connection_options_are_rejected(Config) ->
    [?assertEqual(?CONN "." ++ Path,
                  maps:get(toml_path, pool_error(Config, "", [Path, " = ", Value])))
     || {Path, Value} <- [{"host", "\"\""}, {"port", "-1"}, {"port", "65536"},
                          {"port", "\"5672\""}, {"username", "\"\""}, {"password", "\"\""},
                          {"virtual_host", "\"\""}, {"confirms_enabled", "\"yes\""},
                          {"reconnect.attempts", "-1"}, {"reconnect.delay", "-1"}]].

bad_generic_pool_options_are_rejected(doc) ->
    ["Bad worker pool options of a rabbit pool are rejected as for any pool"];
bad_generic_pool_options_are_rejected(Config) ->
    [?assertEqual("outgoing_pools.rabbit.event_pusher." ++ Key,
                  maps:get(toml_path, pool_error(Config, [Key, " = ", Value], "")))
     || {Key, Value} <- [{"workers", "0"}, {"max_worker_queue_len", "-1"},
                         {"scope", "\"everywhere\""}]].

host_config_pool_belongs_to_its_host_type(doc) ->
    ["A rabbit pool in host_config has the host type as its scope"];
host_config_pool_belongs_to_its_host_type(Config) ->
    Opts = parse(Config, [general(),
                          "[[host_config]]\nhost_type = \"localhost\"\n"
                          "[host_config.outgoing_pools.rabbit.event_pusher.connection]\n"
                          "port = 5673\n"]),
    ?assertMatch([#{type := rabbit, scope := <<"localhost">>, tag := event_pusher,
                    conn_opts := #{port := 5673, host := "localhost"}}],
                 opt({outgoing_pools, <<"localhost">>}, Opts)).

pool_entry_becomes_the_rust_pool_config(doc) ->
    ["A global pool's options map onto rabbit_pool_start's config: workers = connections, "
     "the queue bounded by workers x max_worker_queue_len, events tagged with the scope"];
pool_entry_becomes_the_rust_pool_config(Config) ->
    [Entry] = pools(Config, pool_toml("workers = 4\nmax_worker_queue_len = 25",
                                      "host = \"127.0.0.1\"\nport = 5673\n"
                                      "username = \"u\"\npassword = \"p\"\n"
                                      "virtual_host = \"vh\"\nconfirms_enabled = true\n"
                                      "reconnect.attempts = 3\nreconnect.delay = 50")),
    {ok, {mongoose_event_pusher_nif, rabbit_pool_start, [PoolConfig]}} =
        mongoose_event_pusher_nif_config:start_spec({rabbit, global, event_pusher}, Entry),
    ?assertEqual(#{host => <<"127.0.0.1">>, port => 5673, username => <<"u">>,
                   password => <<"p">>, virtual_host => <<"vh">>, confirms_enabled => true,
                   reconnect_attempts => 3, reconnect_delay => 50, workers => 4,
                   queue_capacity => 100, confirm_timeout => 60000,
                   event_tag => {mod_event_pusher_rabbit, {global, event_pusher}}},
                 PoolConfig).

host_type_pool_reports_under_its_host_type(doc) ->
    ["A pool of scope host_type, started for a host type, tags its events with that host type"];
host_type_pool_reports_under_its_host_type(Config) ->
    [Entry] = pools(Config, pool_toml("scope = \"host_type\"", "")),
    {ok, {_, rabbit_pool_start, [#{event_tag := Tag, queue_capacity := Capacity}]}} =
        mongoose_event_pusher_nif_config:start_spec({rabbit, <<"localhost">>, event_pusher},
                                                     Entry),
    ?assertEqual({mod_event_pusher_rabbit, {<<"localhost">>, event_pusher}}, Tag),
    ?assert(Capacity >= 10).

tls_section_is_passed_to_the_rust_pool(doc) ->
    ["The pool's TLS section reaches the Rust pool as the NIF's tls map"];
tls_section_is_passed_to_the_rust_pool(Config) ->
    #{"ca.pem" := CA} = ?config(tls_files, Config),
    [Entry] = pools(Config, pool_toml("", ["port = 5671\ntls.verify_mode = \"none\"\n"
                                           "tls.cacertfile = '", CA, "'\n"])),
    {ok, {_, rabbit_pool_start, [#{tls := TLS}]}} =
        mongoose_event_pusher_nif_config:start_spec({rabbit, global, event_pusher}, Entry),
    ?assertEqual(#{verify_mode => none, cacertfile => list_to_binary(CA),
                   server_name_indication => true}, TLS).

%%====================================================================
%% Helpers
%%====================================================================

%% One `[modules.mod_event_pusher.rabbit.<exchange>]' table per entry.
exchanges_toml(Exchanges) ->
    [["[modules.mod_event_pusher.rabbit.", Name, "]\n", Body, "\n"] || {Name, Body} <- Exchanges].

pool_toml(PoolBody, ConnBody) ->
    ["[outgoing_pools.rabbit.event_pusher]\n", PoolBody, "\n",
     "[outgoing_pools.rabbit.event_pusher.connection]\n", ConnBody, "\n"].

rabbit_opts(Config, Toml) ->
    #{mod_event_pusher := #{rabbit := Opts}} = modules(Config, Toml),
    Opts.

exchange_error(Config, Exchange, Body) ->
    the_error(Config, [general(), exchanges_toml([{Exchange, Body}])]).

pool_error(Config, PoolBody, ConnBody) ->
    the_error(Config, [general(), pool_toml(PoolBody, ConnBody)]).
