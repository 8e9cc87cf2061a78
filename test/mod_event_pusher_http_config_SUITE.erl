%% @doc The options of `[modules.mod_event_pusher.http]' and
%% `[outgoing_pools.http.*]' are accepted, defaulted and rejected as
%% MongooseIM does (doc/compatibility.md §4), each error naming the option's TOML path.
-module(mod_event_pusher_http_config_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

%% The TOML parsing and error picking shared by the config suites.
-import(ep_config_check, [general/0, modules/2, pools/2, parse/2, the_error/2, opt/2,
                          path_and_reason/1]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1]).

-export([http_backend_without_handlers_has_none/1,
         empty_handler_gets_mongooseim_defaults/1,
         every_handler_option_is_accepted/1,
         one_leading_slash_is_stripped_from_path/1,
         handlers_keep_their_order/1,
         backend_module_gets_the_backend_options/1,
         host_config_sets_handlers_for_its_host_type/1,
         empty_pool_name_is_rejected/1,
         non_string_handler_options_are_rejected/1,
         missing_callback_module_is_rejected/1,
         duplicate_handlers_are_rejected/1,
         unknown_handler_option_is_rejected/1,
         negative_retry_options_are_rejected/1,
         delivery_options_are_accepted/1,
         bad_delivery_options_are_rejected/1,
         unknown_backend_is_rejected/1,
         handlers_must_be_a_list/1]).
-export([pool_gets_mongooseim_defaults/1,
         every_pool_option_is_accepted/1,
         pool_without_host_is_rejected/1,
         empty_host_is_rejected/1,
         empty_path_prefix_is_rejected/1,
         negative_request_timeout_is_rejected/1,
         bad_generic_pool_options_are_rejected/1,
         host_config_pool_belongs_to_its_host_type/1,
         bad_tls_options_are_rejected/1]).

-define(HANDLERS, "modules.mod_event_pusher.http.handlers").
-define(CONN, "outgoing_pools.http.default.connection").

%%====================================================================
%% Setup
%%====================================================================

all() ->
    [{group, module_options}, {group, pool_options}].

groups() ->
    [{module_options, [parallel], [http_backend_without_handlers_has_none,
                                   empty_handler_gets_mongooseim_defaults,
                                   every_handler_option_is_accepted,
                                   one_leading_slash_is_stripped_from_path,
                                   handlers_keep_their_order,
                                   backend_module_gets_the_backend_options,
                                   host_config_sets_handlers_for_its_host_type,
                                   empty_pool_name_is_rejected,
                                   non_string_handler_options_are_rejected,
                                   missing_callback_module_is_rejected,
                                   delivery_options_are_accepted,
                                   bad_delivery_options_are_rejected,
                                   duplicate_handlers_are_rejected,
                                   unknown_handler_option_is_rejected,
                                   negative_retry_options_are_rejected,
                                   unknown_backend_is_rejected,
                                   handlers_must_be_a_list]},
     {pool_options, [parallel], [pool_gets_mongooseim_defaults,
                                 every_pool_option_is_accepted,
                                 pool_without_host_is_rejected,
                                 empty_host_is_rejected,
                                 empty_path_prefix_is_rejected,
                                 negative_request_timeout_is_rejected,
                                 bad_generic_pool_options_are_rejected,
                                 host_config_pool_belongs_to_its_host_type,
                                 bad_tls_options_are_rejected]}].

init_per_suite(Config) ->
    Dir = ?config(priv_dir, Config),
    Files = [{F, filename:join(Dir, F)} || F <- ["ca.pem", "cert.pem", "key.pem"]],
    [ok = file:write_file(Path, <<"test\n">>) || {_, Path} <- Files],
    [{tls_files, maps:from_list(Files)} | Config].

end_per_suite(_Config) ->
    ok.

%%====================================================================
%% [modules.mod_event_pusher.http]
%%====================================================================

http_backend_without_handlers_has_none(Config) ->
    ?assertEqual(#{handlers => []}, http_opts(Config, "[modules.mod_event_pusher.http]\n")).

empty_handler_gets_mongooseim_defaults(Config) ->
    ?assertEqual([default_handler()], handlers(Config, [""])).

every_handler_option_is_accepted(Config) ->
    ?assertEqual([#{pool_name => my_pool, path => <<"notify">>,
                    callback_module => ep_http_custom_callback,
                    max_retries => 5, retry_base_delay => 0}],
                 handlers(Config, ["pool_name = \"my_pool\"\n"
                                   "path = \"/notify\"\n"
                                   "callback_module = \"ep_http_custom_callback\"\n"
                                   "max_retries = 5\n"
                                   "retry_base_delay = 0\n"])).

one_leading_slash_is_stripped_from_path(Config) ->
    Path = fun(P) -> [#{path := Fixed}] = handlers(Config, [["path = \"", P, "\""]]), Fixed end,
    ?assertEqual(<<"notifications">>, Path("/notifications")),
    ?assertEqual(<<"notifications">>, Path("notifications")),
    ?assertEqual(<<"/twice">>, Path("//twice")),
    ?assertEqual(<<"a/b/">>, Path("/a/b/")),
    ?assertEqual(<<>>, Path("/")),
    ?assertEqual(<<>>, Path("")).

handlers_keep_their_order(Config) ->
    Default = default_handler(),
    ?assertEqual([Default#{pool_name => second}, Default, Default#{path => <<"x">>}],
                 handlers(Config, ["pool_name = \"second\"", "", "path = \"x\""])).

backend_module_gets_the_backend_options(Config) ->
    %% MongooseIM resolves module dependencies at parse time: mod_event_pusher
    %% depends on its backend module with the backend's options.
    Modules = modules(Config, handlers_toml(["pool_name = \"p\""])),
    HttpOpts = #{handlers => [(default_handler())#{pool_name => p}]},
    ?assertEqual(#{mod_event_pusher => #{http => HttpOpts},
                   mod_event_pusher_http => HttpOpts},
                 Modules).

host_config_sets_handlers_for_its_host_type(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
                          handlers_toml([""]),
                          "[[host_config]]\nhost_type = \"b\"\n",
                          "[[host_config.modules.mod_event_pusher.http.handlers]]\n"
                          "pool_name = \"b_pool\"\n"]),
    ?assertMatch(#{mod_event_pusher := #{http := #{handlers := [#{pool_name := http_pool}]}}},
                 opt({modules, <<"a">>}, Opts)),
    ?assertMatch(#{mod_event_pusher := #{http := #{handlers := [#{pool_name := b_pool}]}},
                   mod_event_pusher_http := #{handlers := [#{pool_name := b_pool}]}},
                 opt({modules, <<"b">>}, Opts)).

empty_pool_name_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS ".pool_name", reason := function_clause,
                   text := "Config value rejected by its validator"},
                 handler_error(Config, "pool_name = \"\"")).

non_string_handler_options_are_rejected(Config) ->
    [?assertEqual({?HANDLERS "." ++ Key, wrong_type},
                  path_and_reason(handler_error(Config, [Key, " = ", Value])))
     || {Key, Value} <- [{"pool_name", "1"}, {"path", "true"}, {"callback_module", "1"},
                         {"max_retries", "\"5\""}]].

missing_callback_module_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS ".callback_module", reason := module_not_found,
                   module := wow_cool_but_missing},
                 handler_error(Config, "callback_module = \"wow_cool_but_missing\"")).

duplicate_handlers_are_rejected(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS, reason := validate_unique_items_failed},
                 the_error(Config, [general(), handlers_toml(["", ""])])),
    %% the same after defaults: an explicit default equals an empty handler
    ?assertMatch(#{toml_path := ?HANDLERS, reason := validate_unique_items_failed},
                 the_error(Config, [general(), handlers_toml(["", "pool_name = \"http_pool\""])])).

unknown_handler_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS, reason := unexpected_key, key := <<"url">>},
                 handler_error(Config, "url = \"http://localhost\"")).

negative_retry_options_are_rejected(Config) ->
    [?assertEqual(?HANDLERS "." ++ Key,
                  maps:get(toml_path, handler_error(Config, [Key, " = -1"])))
     || Key <- ["max_retries", "retry_base_delay"]].

%% (ours) doc/http.md "Outages, timeouts, Retry-After and event IDs".
delivery_options_are_accepted(Config) ->
    ?assertEqual([(default_handler())#{event_id_header => <<"idempotency-key">>,
                                       retry_on_timeout => true, max_age => 600000,
                                       retry_after_max => 0}],
                 handlers(Config, ["event_id_header = \"Idempotency-Key\"\n"
                                   "retry_on_timeout = true\n"
                                   "max_age = 600000\n"
                                   "retry_after_max = 0\n"])),
    ?assertMatch([#{event_id_header := <<"webhook-id">>, events := [chat_in]}],
                 handlers(Config, ["event_id_header = \"webhook-id\"\n"
                                   "events = [\"chat_in\"]\n"])).

bad_delivery_options_are_rejected(Config) ->
    [?assertEqual({?HANDLERS "." ++ Key, Reason},
                  path_and_reason(handler_error(Config, [Key, " = ", Value])))
     || {Key, Value, Reason} <- [{"retry_on_timeout", "\"yes\"", wrong_type},
                                 {"max_age", "0", function_clause},
                                 {"max_age", "\"1h\"", wrong_type},
                                 {"retry_after_max", "-1", function_clause},
                                 {"event_id_header", "1", wrong_type}]],
    [?assertMatch(#{toml_path := ?HANDLERS ".event_id_header"},
                  handler_error(Config, ["event_id_header = \"", Name, "\""]))
     || Name <- ["", "bad header", "x-id:", "Host", "content-length"]].

unknown_backend_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_event_pusher", reason := unexpected_key,
                   key := <<"kafka">>},
                 the_error(Config, [general(), "[modules.mod_event_pusher.kafka]\n"])).

handlers_must_be_a_list(Config) ->
    ?assertMatch(#{toml_path := ?HANDLERS, reason := wrong_node_type},
                 the_error(Config, [general(), "[modules.mod_event_pusher.http.handlers]\n"
                                               "pool_name = \"p\"\n"])).

%%====================================================================
%% [outgoing_pools.http.*]
%%====================================================================

pool_gets_mongooseim_defaults(Config) ->
    ?assertEqual([#{type => http, scope => global, tag => default,
                    opts => #{workers => 10, strategy => best_worker, call_timeout => 5000},
                    conn_opts => #{host => "http://localhost:8080",
                                   path_prefix => <<"/">>,
                                   request_timeout => 2000}}],
                 pools(Config, pool_toml("", "host = \"http://localhost:8080\""))).

every_pool_option_is_accepted(Config) ->
    #{"ca.pem" := CA, "cert.pem" := Cert, "key.pem" := Key} = ?config(tls_files, Config),
    Toml = pool_toml("workers = 50\nstrategy = \"available_worker\"\ncall_timeout = 100\n"
                     "scope = \"host_type\"",
                     ["host = \"https://push.example.com\"\npath_prefix = \"/api/\"\n"
                      "request_timeout = 0\n"
                      "tls.verify_mode = \"peer\"\n"
                      "tls.cacertfile = '", CA, "'\n"
                      "tls.certfile = '", Cert, "'\n"
                      "tls.keyfile = '", Key, "'\n"
                      "tls.password = \"pw\"\n"
                      "tls.versions = [\"tlsv1.3\"]\n"
                      "tls.ciphers = \"TLS_AES_256_GCM_SHA384\"\n"
                      "tls.server_name_indication.host = \"push.example.com\"\n"]),
    ?assertEqual([#{type => http, scope => host_type, tag => default,
                    opts => #{workers => 50, strategy => available_worker, call_timeout => 100},
                    conn_opts => #{host => "https://push.example.com",
                                   path_prefix => <<"/api/">>,
                                   request_timeout => 0,
                                   tls => #{verify_mode => peer,
                                            cacertfile => CA,
                                            certfile => Cert,
                                            keyfile => Key,
                                            password => "pw",
                                            versions => ['tlsv1.3'],
                                            ciphers => "TLS_AES_256_GCM_SHA384",
                                            disconnect_on_failure => true,
                                            crl_files => [],
                                            server_name_indication =>
                                                #{enabled => true, host => "push.example.com",
                                                  protocol => default}}}}],
                 pools(Config, Toml)),
    [#{opts := Opts}] = pools(Config, pool_toml("max_worker_queue_len = 0", "host = \"h\"")),
    ?assertEqual(0, maps:get(max_worker_queue_len, Opts)).

pool_without_host_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?CONN, reason := missing_mandatory_keys,
                   missing_keys := [<<"host">>]},
                 the_error(Config, [general(), pool_toml("workers = 1", "")])),
    ?assertMatch(#{toml_path := ?CONN, reason := missing_mandatory_keys},
                 the_error(Config, [general(), "[outgoing_pools.http.default]\n"])).

empty_host_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?CONN ".host", reason := function_clause},
                 pool_error(Config, "", "host = \"\"")).

empty_path_prefix_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?CONN ".path_prefix", reason := function_clause},
                 pool_error(Config, "", "host = \"h\"\npath_prefix = \"\"")).

negative_request_timeout_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?CONN ".request_timeout", reason := function_clause},
                 pool_error(Config, "", "host = \"h\"\nrequest_timeout = -1")),
    ?assertMatch(#{toml_path := ?CONN ".request_timeout", reason := wrong_type},
                 pool_error(Config, "", "host = \"h\"\nrequest_timeout = \"2s\"")).

bad_generic_pool_options_are_rejected(Config) ->
    [?assertEqual("outgoing_pools.http.default." ++ Key,
                  maps:get(toml_path, pool_error(Config, [Key, " = ", Value], "host = \"h\"")))
     || {Key, Value} <- [{"workers", "0"}, {"strategy", "\"worst_worker\""},
                         {"call_timeout", "0"}, {"max_worker_queue_len", "-1"},
                         {"scope", "\"everywhere\""}]],
    ?assertMatch(#{toml_path := "outgoing_pools.http.default",
                   reason := invalid_worker_pool_strategy_option},
                 pool_error(Config, "strategy = \"random_worker\"\nmax_worker_queue_len = 1",
                            "host = \"h\"")).

host_config_pool_belongs_to_its_host_type(Config) ->
    Opts = parse(Config, [general(),
                          "[[host_config]]\nhost_type = \"localhost\"\n"
                          "[host_config.outgoing_pools.http.default.connection]\n"
                          "host = \"http://h\"\n"]),
    ?assertMatch([#{type := http, scope := <<"localhost">>, tag := default,
                    conn_opts := #{host := "http://h"}}],
                 opt({outgoing_pools, <<"localhost">>}, Opts)),
    ?assertEqual([], opt(outgoing_pools, Opts)).

bad_tls_options_are_rejected(Config) ->
    #{"cert.pem" := Cert} = ?config(tls_files, Config),
    ?assertMatch(#{toml_path := ?CONN ".tls", reason := tls_certfile_without_keyfile},
                 pool_error(Config, "", ["host = \"h\"\ntls.certfile = '", Cert, "'"])),
    ?assertMatch(#{toml_path := ?CONN ".tls.cacertfile", reason := invalid_filename},
                 pool_error(Config, "", "host = \"h\"\ntls.cacertfile = '/no/such/ca.pem'")),
    ?assertMatch(#{toml_path := ?CONN ".tls.verify_mode", reason := validate_enum_failed},
                 pool_error(Config, "", "host = \"h\"\ntls.verify_mode = \"always\"")).

%%====================================================================
%% Helpers
%%====================================================================

default_handler() ->
    #{pool_name => http_pool, path => <<>>, callback_module => mod_event_pusher_http_defaults}.

%% One `[[...handlers]]' table per body.
handlers_toml(Bodies) ->
    [["[[modules.mod_event_pusher.http.handlers]]\n", Body, "\n"] || Body <- Bodies].

pool_toml(PoolBody, ConnBody) ->
    ["[outgoing_pools.http.default]\n", PoolBody, "\n",
     "[outgoing_pools.http.default.connection]\n", ConnBody, "\n"].

http_opts(Config, Toml) ->
    #{mod_event_pusher := #{http := Opts}} = modules(Config, Toml),
    Opts.

handlers(Config, Bodies) ->
    #{handlers := Handlers} = http_opts(Config, handlers_toml(Bodies)),
    Handlers.

handler_error(Config, Body) ->
    the_error(Config, [general(), handlers_toml([Body])]).

pool_error(Config, PoolBody, ConnBody) ->
    the_error(Config, [general(), pool_toml(PoolBody, ConnBody)]).
