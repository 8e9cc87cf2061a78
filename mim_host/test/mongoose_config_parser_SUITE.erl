%% @doc The test host's config parser processes TOML as MongooseIM does:
%% processed shapes, defaults, and a config_error naming the TOML path of every
%% bad option.
-module(mongoose_config_parser_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1]).

%% logger handler capturing warnings for a test case
-export([log/2]).

-export([full_config_is_processed_as_mongooseim_does/1,
         minimal_config_gets_mongooseim_defaults/1,
         processed_options_are_read_through_mongoose_config/1]).
-export([hosts_are_nodeprepped/1,
         duplicate_hosts_are_rejected/1,
         a_host_or_host_type_is_required/1,
         default_server_domain_is_required/1,
         general_section_is_required/1,
         unknown_general_option_is_rejected/1,
         general_option_with_wrong_type_is_rejected/1,
         loglevel_must_be_known/1,
         global_option_is_rejected_in_host_config/1,
         host_config_overrides_host_type_option/1]).
-export([module_options_get_the_defaults_of_its_spec/1,
         every_option_type_is_converted/1,
         unknown_module_is_rejected/1,
         module_without_config_spec_takes_no_options/1,
         unknown_module_option_is_rejected/1,
         missing_required_module_option_is_rejected/1,
         module_option_with_wrong_type_is_rejected/1,
         bad_enum_value_is_rejected/1,
         non_unique_list_is_rejected/1,
         failing_process_function_is_rejected/1,
         section_keys_are_validated/1,
         iqdisc_and_wpool_parts_are_processed/1,
         host_config_replaces_global_modules/1,
         modules_must_support_dynamic_domains_with_host_types/1]).
-export([http_pool_gets_defaults/1,
         http_pool_requires_host/1,
         http_connection_options_are_validated/1,
         generic_pool_options_are_validated/1,
         pool_scope_is_global_or_host_type/1,
         scope_is_rejected_in_host_config/1,
         host_config_pool_is_scoped_to_its_host_type/1,
         unknown_pool_type_is_rejected/1,
         empty_pool_tag_is_rejected/1,
         rabbit_pool_gets_defaults/1,
         rdbms_pool_connection_gets_mongooseim_defaults/1,
         rdbms_pool_options_are_validated_with_their_path/1,
         rabbit_connection_options_are_validated/1,
         unknown_connection_option_is_rejected/1]).
-export([tls_appears_only_when_configured/1,
         tls_section_is_processed/1,
         certfile_without_keyfile_is_rejected/1,
         missing_tls_file_is_rejected/1,
         tls_option_values_are_validated/1,
         server_name_indication_is_validated/1,
         server_only_tls_option_is_rejected/1]).
-export([operator_config_loads_with_our_module_options/1,
         misspelled_top_level_section_is_rejected/1,
         keys_of_unemulated_sections_are_checked/1,
         mongooseim_module_is_accepted_but_not_started/1,
         other_pool_types_get_generic_options/1,
         general_backends_need_their_internal_database/1,
         routing_modules_are_checked_and_left_out/1,
         shapers_are_processed/1,
         acl_and_access_are_processed_per_host_type/1]).
-export([toml_syntax_error_is_a_config_error/1,
         missing_file_is_a_config_error/1,
         non_toml_file_is_a_config_error/1,
         errors_of_several_sections_are_all_reported/1,
         error_names_path_value_and_reason/1,
         secrets_are_not_in_errors/1]).

%%====================================================================
%% Setup
%%====================================================================

all() ->
    [{group, full}, {group, general}, {group, modules}, {group, pools},
     {group, tls}, {group, mongooseim_sections}, {group, errors}].

groups() ->
    [{full, [parallel], [full_config_is_processed_as_mongooseim_does,
                         minimal_config_gets_mongooseim_defaults,
                         processed_options_are_read_through_mongoose_config]},
     {general, [parallel], [hosts_are_nodeprepped,
                            duplicate_hosts_are_rejected,
                            a_host_or_host_type_is_required,
                            default_server_domain_is_required,
                            general_section_is_required,
                            unknown_general_option_is_rejected,
                            general_option_with_wrong_type_is_rejected,
                            loglevel_must_be_known,
                            global_option_is_rejected_in_host_config,
                            host_config_overrides_host_type_option]},
     {modules, [parallel], [module_options_get_the_defaults_of_its_spec,
                            every_option_type_is_converted,
                            unknown_module_is_rejected,
                            module_without_config_spec_takes_no_options,
                            unknown_module_option_is_rejected,
                            missing_required_module_option_is_rejected,
                            module_option_with_wrong_type_is_rejected,
                            bad_enum_value_is_rejected,
                            non_unique_list_is_rejected,
                            failing_process_function_is_rejected,
                            section_keys_are_validated,
                            iqdisc_and_wpool_parts_are_processed,
                            host_config_replaces_global_modules,
                            modules_must_support_dynamic_domains_with_host_types]},
     {pools, [parallel], [http_pool_gets_defaults,
                          http_pool_requires_host,
                          http_connection_options_are_validated,
                          generic_pool_options_are_validated,
                          pool_scope_is_global_or_host_type,
                          scope_is_rejected_in_host_config,
                          host_config_pool_is_scoped_to_its_host_type,
                          unknown_pool_type_is_rejected,
                          empty_pool_tag_is_rejected,
                          rabbit_pool_gets_defaults,
                          rdbms_pool_connection_gets_mongooseim_defaults,
                          rdbms_pool_options_are_validated_with_their_path,
                          rabbit_connection_options_are_validated,
                          unknown_connection_option_is_rejected]},
     {tls, [parallel], [tls_appears_only_when_configured,
                        tls_section_is_processed,
                        certfile_without_keyfile_is_rejected,
                        missing_tls_file_is_rejected,
                        tls_option_values_are_validated,
                        server_name_indication_is_validated,
                        server_only_tls_option_is_rejected]},
     {mongooseim_sections, [parallel],
      [operator_config_loads_with_our_module_options,
       misspelled_top_level_section_is_rejected,
       keys_of_unemulated_sections_are_checked,
       mongooseim_module_is_accepted_but_not_started,
       other_pool_types_get_generic_options,
       general_backends_need_their_internal_database,
       routing_modules_are_checked_and_left_out,
       shapers_are_processed,
       acl_and_access_are_processed_per_host_type]},
     {errors, [parallel], [toml_syntax_error_is_a_config_error,
                           missing_file_is_a_config_error,
                           non_toml_file_is_a_config_error,
                           errors_of_several_sections_are_all_reported,
                           error_names_path_value_and_reason,
                           secrets_are_not_in_errors]}].

init_per_suite(Config) ->
    %% TLS options name files that must exist; their content is not read.
    Dir = ?config(priv_dir, Config),
    Files = [{F, filename:join(Dir, F)} || F <- ["ca.pem", "cert.pem", "key.pem", "crl.pem"]],
    [ok = file:write_file(Path, <<"test\n">>) || {_, Path} <- Files],
    [{tls_files, maps:from_list(Files)} | Config].

end_per_suite(_Config) ->
    ok.

%%====================================================================
%% Full configs
%%====================================================================

full_config_is_processed_as_mongooseim_does(Config) ->
    Toml = ["[general]\n"
            "  hosts = [\"Localhost\", \"example.com\"]\n"
            "  host_types = [\"dyn\"]\n"
            "  default_server_domain = \"localhost\"\n"
            "  language = \"pl\"\n"
            "\n"
            "[modules.mod_config_dummy]\n"
            "  name = \"global\"\n"
            "  tags = [\"a\", \"b\"]\n"
            "  range = {low = 1, high = 5}\n"
            "\n"
            "[outgoing_pools.http.notifications]\n"
            "  scope = \"global\"\n"
            "  workers = 20\n"
            "  strategy = \"best_worker\"\n"
            "  call_timeout = 3000\n"
            "  max_worker_queue_len = 100\n"
            "  [outgoing_pools.http.notifications.connection]\n"
            "    host = \"https://push.example.com:8443\"\n"
            "    path_prefix = \"/api/\"\n"
            "    request_timeout = 500\n"
            "    [outgoing_pools.http.notifications.connection.tls]\n",
            full_tls_toml(Config),
            "\n"
            "[outgoing_pools.rabbit.event_pusher]\n"
            "  scope = \"host_type\"\n"
            "  workers = 5\n"
            "  strategy = \"next_worker\"\n"
            "  call_timeout = 1000\n"
            "  [outgoing_pools.rabbit.event_pusher.connection]\n"
            "    host = \"rabbit.example.com\"\n"
            "    port = 5671\n"
            "    username = \"alice\"\n"
            "    password = \"makota\"\n"
            "    virtual_host = \"events\"\n"
            "    confirms_enabled = true\n"
            "    reconnect = {attempts = 3, delay = 500}\n"
            "    tls.verify_mode = \"none\"\n"
            "\n"
            "[[host_config]]\n"
            "  host_type = \"dyn\"\n"
            "  general.replaced_wait_timeout = 5000\n"
            "  [host_config.modules.mod_config_dummy]\n"
            "    name = \"dynamic\"\n"
            "    kind = \"fancy\"\n"
            "  [host_config.outgoing_pools.http.local]\n"
            "    connection.host = \"http://127.0.0.1:8080\"\n"],
    DummyDefaults = #{kind => plain, count => 1, max_size => infinity, enabled => false,
                      tags => [], extra => #{depth => 1}},
    GlobalDummy = DummyDefaults#{name => <<"global">>, tags => [<<"a">>, <<"b">>],
                                 range => {1, 5}},
    DynDummy = DummyDefaults#{name => <<"dynamic">>, kind => fancy},
    HttpPool = #{type => http, scope => global, tag => notifications,
                 opts => #{workers => 20, strategy => best_worker, call_timeout => 3000,
                           max_worker_queue_len => 100},
                 conn_opts => #{host => "https://push.example.com:8443",
                                path_prefix => <<"/api/">>,
                                request_timeout => 500,
                                tls => full_tls_opts(Config)}},
    RabbitPool = #{type => rabbit, scope => host_type, tag => event_pusher,
                   opts => #{workers => 5, strategy => next_worker, call_timeout => 1000},
                   conn_opts => #{host => "rabbit.example.com", port => 5671,
                                  username => <<"alice">>, password => <<"makota">>,
                                  virtual_host => <<"events">>, confirms_enabled => true,
                                  reconnect => #{attempts => 3, delay => 500},
                                  tls => #{verify_mode => none,
                                           disconnect_on_failure => true,
                                           crl_files => [],
                                           server_name_indication => default_sni()}}},
    LocalPool = #{type => http, scope => <<"dyn">>, tag => local,
                  opts => default_wpool_opts(),
                  conn_opts => #{host => "http://127.0.0.1:8080",
                                 path_prefix => <<"/">>, request_timeout => 2000}},
    Expected = [{default_server_domain, <<"localhost">>},
                {hide_service_name, false},
                {host_types, [<<"dyn">>]},
                {sm_backend, mnesia},
                {component_backend, mnesia},
                {s2s_backend, mnesia},
                {hosts, [<<"localhost">>, <<"example.com">>]},
                {internal_databases, #{mnesia => #{}}},
                {language, <<"pl">>},
                {loglevel, warning},
                {outgoing_pools, [HttpPool, RabbitPool]},
                {registration_timeout, 600},
                {{modules, <<"dyn">>}, #{mod_config_dummy => DynDummy}},
                {{modules, <<"example.com">>}, #{mod_config_dummy => GlobalDummy}},
                {{modules, <<"localhost">>}, #{mod_config_dummy => GlobalDummy}},
                {{outgoing_pools, <<"dyn">>}, [LocalPool]},
                {{replaced_wait_timeout, <<"dyn">>}, 5000},
                {{replaced_wait_timeout, <<"example.com">>}, 2000},
                {{replaced_wait_timeout, <<"localhost">>}, 2000}],
    assert_same_options(Expected, parse(Config, Toml)).

minimal_config_gets_mongooseim_defaults(Config) ->
    Expected = [{default_server_domain, <<"localhost">>},
                {hide_service_name, false},
                {host_types, []},
                {sm_backend, mnesia},
                {component_backend, mnesia},
                {s2s_backend, mnesia},
                {hosts, [<<"localhost">>]},
                {internal_databases, #{mnesia => #{}}},
                {language, <<"en">>},
                {loglevel, warning},
                {outgoing_pools, []},
                {registration_timeout, 600},
                {{modules, <<"localhost">>}, #{}},
                {{replaced_wait_timeout, <<"localhost">>}, 2000}],
    assert_same_options(Expected, parse(Config, general())).

processed_options_are_read_through_mongoose_config(Config) ->
    Opts = parse(Config, [general(), dummy_module("name = \"x\"\nkind = \"fancy\"")]),
    ok = mongoose_config:set_opts(maps:from_list(Opts)),
    try
        ?assertEqual([<<"localhost">>], mongoose_config:get_opt(hosts)),
        ?assertEqual(fancy, mongoose_config:get_opt([{modules, <<"localhost">>},
                                                    mod_config_dummy, kind])),
        ?assertEqual(none, mongoose_config:get_opt({outgoing_pools, <<"localhost">>}, none)),
        ?assertEqual({error, not_found},
                     mongoose_config:lookup_opt([{modules, <<"localhost">>}, mod_other])),
        ?assertEqual({ok, []}, mongoose_config:lookup_opt(outgoing_pools)),
        ?assertError({badkey, no_such_key}, mongoose_config:get_opt(no_such_key))
    after
        mongoose_config:erase_opts()
    end.

%%====================================================================
%% general
%%====================================================================

hosts_are_nodeprepped(Config) ->
    Opts = parse(Config, "[general]\nhosts = [\"LocalHost\", \"Example.COM\"]\n"
                         "default_server_domain = \"LocalHost\"\n"),
    ?assertEqual([<<"localhost">>, <<"example.com">>], opt(hosts, Opts)),
    ?assertEqual(<<"localhost">>, opt(default_server_domain, Opts)).

duplicate_hosts_are_rejected(Config) ->
    ?assertMatch(#{toml_path := "general.hosts", reason := validate_unique_items_failed},
                 the_error(Config, "[general]\nhosts = [\"a\", \"a\"]\n"
                                   "default_server_domain = \"a\"\n")),
    ?assertMatch(#{toml_path := "general", reason := duplicate_hosts_or_host_types},
                 the_error(Config, "[general]\nhosts = [\"a\"]\nhost_types = [\"a\"]\n"
                                   "default_server_domain = \"a\"\n")).

a_host_or_host_type_is_required(Config) ->
    ?assertMatch(#{toml_path := "general", reason := no_hosts_or_host_types},
                 the_error(Config, "[general]\ndefault_server_domain = \"a\"\n")),
    ?assertMatch(#{toml_path := "general.hosts", reason := function_clause},
                 the_error(Config, "[general]\nhosts = [\"\"]\n"
                                   "default_server_domain = \"a\"\n")),
    Opts = parse(Config, "[general]\nhost_types = [\"t\"]\ndefault_server_domain = \"a\"\n"),
    ?assertEqual([<<"t">>], opt(host_types, Opts)),
    ?assertEqual(#{}, opt({modules, <<"t">>}, Opts)).

default_server_domain_is_required(Config) ->
    ?assertMatch(#{toml_path := "general", reason := missing_mandatory_keys,
                   missing_keys := [<<"default_server_domain">>]},
                 the_error(Config, "[general]\nhosts = [\"a\"]\n")).

general_section_is_required(Config) ->
    ?assertMatch(#{toml_path := "", reason := missing_mandatory_keys,
                   missing_keys := [<<"general">>]},
                 the_error(Config, "[modules]\n")).

unknown_general_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "general", reason := unexpected_key, key := <<"loglvl">>},
                 the_error(Config, [general(), "loglvl = \"debug\"\n"])),
    ?assertMatch(#{toml_path := "general", reason := unexpected_key, key := <<"sm_backnd">>},
                 the_error(Config, [general(), "sm_backnd = \"mnesia\"\n"])),
    %% removed from MongooseIM in 6.2
    ?assertMatch(#{toml_path := "general", reason := unexpected_key,
                   key := <<"mongooseimctl_access_commands">>},
                 the_error(Config, [general(), "mongooseimctl_access_commands = {}\n"])).

general_option_with_wrong_type_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "general.language", reason := wrong_type, expected := binary},
                 the_error(Config, [general(), "language = 1\n"])),
    ?assertMatch(#{toml_path := "general.hosts", reason := wrong_node_type, expected := list},
                 the_error(Config, "[general]\nhosts = \"a\"\ndefault_server_domain = \"a\"\n")),
    ?assertMatch(#{toml_path := "general.registration_timeout"},
                 the_error(Config, [general(), "registration_timeout = 0\n"])),
    ?assertEqual(infinity, opt(registration_timeout,
                               parse(Config, [general(), "registration_timeout = \"infinity\"\n"]))).

loglevel_must_be_known(Config) ->
    ?assertEqual(debug, opt(loglevel, parse(Config, [general(), "loglevel = \"debug\"\n"]))),
    ?assertMatch(#{toml_path := "general.loglevel", reason := validate_loglevel_failed},
                 the_error(Config, [general(), "loglevel = \"bebug\"\n"])).

global_option_is_rejected_in_host_config(Config) ->
    ?assertMatch(#{toml_path := "host_config.general.language",
                   reason := global_option_in_host_config, host_type := <<"localhost">>},
                 the_error(Config, [general(), host_config("localhost",
                                                           "general.language = \"pl\"")])).

host_config_overrides_host_type_option(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
                          host_config("b", "general.replaced_wait_timeout = 10")]),
    ?assertEqual(2000, opt({replaced_wait_timeout, <<"a">>}, Opts)),
    ?assertEqual(10, opt({replaced_wait_timeout, <<"b">>}, Opts)).

%%====================================================================
%% modules
%%====================================================================

module_options_get_the_defaults_of_its_spec(Config) ->
    ?assertEqual(#{name => <<"n">>, kind => plain, count => 1, max_size => infinity,
                   enabled => false, tags => [], extra => #{depth => 1}},
                 dummy_opts(Config, "name = \"n\"")).

every_option_type_is_converted(Config) ->
    Opts = dummy_opts(Config, "name = \"n\"\nlabel = \"text\"\nkind = \"fancy\"\ncount = 7\n"
                              "max_size = 1024\nratio = 0.5\nenabled = true\nport = 8080\n"
                              "backend_module = \"lists\"\npool = \"my_pool\"\n"
                              "tags = [\"x\"]\nextra.depth = 3\nlimits = {a = 1, b = 2}\n"),
    ?assertEqual(#{name => <<"n">>, label => "text", kind => fancy, count => 7,
                   max_size => 1024, ratio => 0.5, enabled => true, port => 8080,
                   backend_module => lists, pool => my_pool, tags => [<<"x">>],
                   extra => #{depth => 3}, limits => #{a => 1, b => 2}},
                 Opts).

unknown_module_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules", reason := module_not_found,
                   module := mod_no_such_module},
                 the_error(Config, [general(), "[modules.mod_no_such_module]\n"])).

module_without_config_spec_takes_no_options(Config) ->
    %% a loadable module without config_spec/0 gets MongooseIM's empty section
    ?assertEqual(#{lists => #{}},
                 opt({modules, <<"localhost">>}, parse(Config, [general(), "[modules.lists]\n"]))),
    ?assertMatch(#{toml_path := "modules.lists", reason := unexpected_key, key := <<"opt">>},
                 the_error(Config, [general(), "[modules.lists]\nopt = 1\n"])).

unknown_module_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_config_dummy", reason := unexpected_key,
                   key := <<"colour">>},
                 dummy_error(Config, "name = \"n\"\ncolour = \"red\"")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.extra", reason := unexpected_key,
                   key := <<"width">>},
                 dummy_error(Config, "name = \"n\"\nextra.width = 1")).

missing_required_module_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_config_dummy", reason := missing_mandatory_keys,
                   missing_keys := [<<"name">>]},
                 dummy_error(Config, "kind = \"fancy\"")),
    %% required = all
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.range",
                   reason := missing_mandatory_keys, missing_keys := [<<"low">>]},
                 dummy_error(Config, "name = \"n\"\nrange.high = 1")).

module_option_with_wrong_type_is_rejected(Config) ->
    [?assertMatch(#{toml_path := "modules.mod_config_dummy." ++ Key,
                    text := "Config node has the wrong type or structure"},
                  dummy_error(Config, ["name = \"n\"\n", Key, " = ", Value]))
     || {Key, Value} <- [{"count", "\"7\""}, {"ratio", "1"}, {"enabled", "\"yes\""},
                         {"label", "[\"a\"]"}, {"tags", "\"a\""}, {"extra", "1"},
                         {"max_size", "1.5"}]],
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.count",
                   text := "Config value rejected by its validator",
                   reason := function_clause},
                 dummy_error(Config, "name = \"n\"\ncount = 0")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.port"},
                 dummy_error(Config, "name = \"n\"\nport = 65536")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.backend_module",
                   reason := module_not_found},
                 dummy_error(Config, "name = \"n\"\nbackend_module = \"no_such_mod\"")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.pool"},
                 dummy_error(Config, "name = \"n\"\npool = \"\"")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.name"},
                 dummy_error(Config, "name = \"\"")).

bad_enum_value_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.kind",
                   reason := validate_enum_failed, value := ugly,
                   allowed_values := [plain, fancy]},
                 dummy_error(Config, "name = \"n\"\nkind = \"ugly\"")).

non_unique_list_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.tags",
                   reason := validate_unique_items_failed, duplicates := [<<"a">>]},
                 dummy_error(Config, "name = \"n\"\ntags = [\"a\", \"b\", \"a\"]")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.tags"},
                 dummy_error(Config, "name = \"n\"\ntags = [\"a\", \"\"]")).

failing_process_function_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.range",
                   text := "Config value rejected by its processing function",
                   reason := function_clause},
                 dummy_error(Config, "name = \"n\"\nrange = {low = 5, high = 1}")).

section_keys_are_validated(Config) ->
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.limits", reason := function_clause},
                 dummy_error(Config, "name = \"n\"\nlimits = {\"\" = 1}")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.limits.a"},
                 dummy_error(Config, "name = \"n\"\nlimits = {a = -1}")).

iqdisc_and_wpool_parts_are_processed(Config) ->
    ?assertMatch(#{iqdisc := one_queue},
                 dummy_opts(Config, "name = \"n\"\niqdisc.type = \"one_queue\"")),
    ?assertMatch(#{iqdisc := {queues, 5}},
                 dummy_opts(Config, "name = \"n\"\niqdisc = {type = \"queues\", workers = 5}")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.iqdisc",
                   reason := missing_mandatory_keys},
                 dummy_error(Config, "name = \"n\"\niqdisc.workers = 5")),
    ?assertMatch(#{wpool := #{workers := 10, strategy := available_worker,
                              call_timeout := 5000}},
                 dummy_opts(Config, "name = \"n\"\nwpool = {}")),
    ?assertMatch(#{toml_path := "modules.mod_config_dummy.wpool.strategy"},
                 dummy_error(Config, "name = \"n\"\nwpool.strategy = \"worst_worker\"")).

host_config_replaces_global_modules(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\", \"c\"]\n"
                          "default_server_domain = \"a\"\n",
                          dummy_module("name = \"global\"\ncount = 2"),
                          host_config("b", "[host_config.modules.mod_config_dummy]\n"
                                           "name = \"for_b\""),
                          host_config("c", "modules = {}")]),
    ?assertMatch(#{mod_config_dummy := #{name := <<"global">>, count := 2}},
                 opt({modules, <<"a">>}, Opts)),
    %% the host type's modules replace the global ones: no merging of options
    ?assertMatch(#{mod_config_dummy := #{name := <<"for_b">>, count := 1}},
                 opt({modules, <<"b">>}, Opts)),
    ?assertEqual(#{}, opt({modules, <<"c">>}, Opts)),
    ?assertEqual(false, lists:keymember({modules, global}, 1, Opts)).

modules_must_support_dynamic_domains_with_host_types(Config) ->
    HostTypes = "[general]\nhost_types = [\"t\"]\ndefault_server_domain = \"a\"\n",
    ?assertMatch(#{mod_config_dummy := _},
                 opt({modules, <<"t">>},
                     parse(Config, [HostTypes, dummy_module("name = \"n\"")]))),
    ?assertMatch(#{toml_path := "", reason := dynamic_domains_not_supported,
                   unsupported_modules := [lists]},
                 the_error(Config, [HostTypes, "[modules.lists]\n"])).

%%====================================================================
%% outgoing_pools
%%====================================================================

http_pool_gets_defaults(Config) ->
    ?assertEqual([#{type => http, scope => global, tag => default,
                    opts => #{workers => 10, strategy => best_worker, call_timeout => 5000},
                    conn_opts => #{host => "http://localhost:8080", path_prefix => <<"/">>,
                                   request_timeout => 2000}}],
                 pools(Config, "[outgoing_pools.http.default]\n"
                               "connection.host = \"http://localhost:8080\"\n")).

http_pool_requires_host(Config) ->
    ?assertMatch(#{toml_path := "outgoing_pools.http.default.connection",
                   reason := missing_mandatory_keys, missing_keys := [<<"host">>]},
                 the_error(Config, [general(), "[outgoing_pools.http.default]\n"])),
    ?assertMatch(#{toml_path := "outgoing_pools.http.default.connection.host"},
                 the_error(Config, [general(), "[outgoing_pools.http.default]\n"
                                               "connection.host = \"\"\n"])).

http_connection_options_are_validated(Config) ->
    P = fun(Extra) -> [general(), "[outgoing_pools.http.default.connection]\n"
                                  "host = \"http://h\"\n", Extra, "\n"] end,
    [#{conn_opts := ConnOpts}] = pools(Config, ["[outgoing_pools.http.default.connection]\n"
                                                "host = \"http://h\"\npath_prefix = \"/p/\"\n"
                                                "request_timeout = 0\n"]),
    ?assertEqual(#{host => "http://h", path_prefix => <<"/p/">>, request_timeout => 0},
                 ConnOpts),
    ?assertMatch(#{toml_path := "outgoing_pools.http.default.connection.path_prefix"},
                 the_error(Config, P("path_prefix = \"\""))),
    ?assertMatch(#{toml_path := "outgoing_pools.http.default.connection.request_timeout"},
                 the_error(Config, P("request_timeout = -1"))),
    ?assertMatch(#{toml_path := "outgoing_pools.http.default.connection.host"},
                 the_error(Config, [general(), "[outgoing_pools.http.default.connection]\n"
                                               "host = 8080\n"])).

generic_pool_options_are_validated(Config) ->
    P = fun(Extra) -> [general(), "[outgoing_pools.http.default]\n",
                       "connection.host = \"http://h\"\n", Extra, "\n"] end,
    [#{opts := Opts}] = pools(Config, ["[outgoing_pools.http.default]\n"
                                       "connection.host = \"http://h\"\n"
                                       "workers = 3\nstrategy = \"random_worker\"\n"
                                       "call_timeout = 10\n"]),
    ?assertEqual(#{workers => 3, strategy => random_worker, call_timeout => 10}, Opts),
    [?assertMatch(#{toml_path := "outgoing_pools.http.default." ++ Key},
                  the_error(Config, P([Key, " = ", Value])))
     || {Key, Value} <- [{"workers", "0"}, {"strategy", "\"worst_worker\""},
                         {"call_timeout", "0"}, {"max_worker_queue_len", "-1"}]],
    %% max_worker_queue_len only goes with the best_worker strategy
    ?assertMatch(#{toml_path := "outgoing_pools.http.default",
                   reason := invalid_worker_pool_strategy_option},
                 the_error(Config, P("strategy = \"next_worker\"\nmax_worker_queue_len = 5"))).

pool_scope_is_global_or_host_type(Config) ->
    Scope = fun(Value) ->
                    [#{scope := S}] = pools(Config, ["[outgoing_pools.http.default]\n"
                                                     "connection.host = \"http://h\"\n"
                                                     "scope = \"", Value, "\"\n"]),
                    S
            end,
    ?assertEqual(global, Scope("global")),
    ?assertEqual(host_type, Scope("host_type")),
    ?assertEqual(host_type, Scope("host")), % MongooseIM's deprecated synonym
    ?assertMatch(#{toml_path := "outgoing_pools.http.default.scope",
                   reason := validate_enum_failed},
                 the_error(Config, [general(), "[outgoing_pools.http.default]\n"
                                               "connection.host = \"http://h\"\n"
                                               "scope = \"everywhere\"\n"])).

scope_is_rejected_in_host_config(Config) ->
    ?assertMatch(#{toml_path := "host_config.outgoing_pools.http.default",
                   reason := unexpected_key, key := <<"scope">>},
                 the_error(Config, [general(),
                                    host_config("localhost",
                                                "[host_config.outgoing_pools.http.default]\n"
                                                "scope = \"global\"\n"
                                                "connection.host = \"http://h\"")])).

host_config_pool_is_scoped_to_its_host_type(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
                          host_config("b", "[host_config.outgoing_pools.rabbit.event_pusher]\n"
                                           "workers = 2")]),
    ?assertEqual([], opt(outgoing_pools, Opts)),
    ?assertEqual(false, lists:keymember({outgoing_pools, <<"a">>}, 1, Opts)),
    ?assertMatch([#{type := rabbit, scope := <<"b">>, tag := event_pusher,
                    opts := #{workers := 2}, conn_opts := #{host := "localhost"}}],
                 opt({outgoing_pools, <<"b">>}, Opts)).

unknown_pool_type_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "outgoing_pools", reason := unexpected_key,
                   key := <<"swimming_pool">>},
                 the_error(Config, [general(), "[outgoing_pools.swimming_pool.default]\n"])).

empty_pool_tag_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "outgoing_pools.http", reason := function_clause},
                 the_error(Config, [general(), "[outgoing_pools.http.\"\"]\n"
                                               "connection.host = \"http://h\"\n"])).

rabbit_pool_gets_defaults(Config) ->
    ?assertEqual([#{type => rabbit, scope => global, tag => event_pusher,
                    opts => default_wpool_opts(),
                    conn_opts => #{host => "localhost", port => 5672,
                                   username => <<"guest">>, password => <<"guest">>,
                                   virtual_host => <<"/">>, confirms_enabled => false,
                                   reconnect => #{attempts => 0, delay => 2000}}}],
                 pools(Config, "[outgoing_pools.rabbit.event_pusher]\n")).

rabbit_connection_options_are_validated(Config) ->
    P = fun(Extra) -> [general(), "[outgoing_pools.rabbit.event_pusher.connection]\n",
                       Extra, "\n"] end,
    [?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection." ++ Key},
                  the_error(Config, P([Key, " = ", Value])))
     || {Key, Value} <- [{"host", "\"\""}, {"port", "123456"}, {"port", "\"5672\""},
                         {"username", "\"\""}, {"password", "\"\""},
                         {"virtual_host", "\"\""}, {"confirms_enabled", "\"yes\""}]],
    ?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.reconnect.attempts"},
                 the_error(Config, P("reconnect.attempts = -1"))),
    ?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.reconnect.delay"},
                 the_error(Config, P("reconnect.delay = \"infinity\""))).

unknown_connection_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection",
                   reason := unexpected_key, key := <<"heartbeat">>},
                 the_error(Config, [general(), "[outgoing_pools.rabbit.event_pusher]\n"
                                               "connection.heartbeat = 5\n"])).

%%====================================================================
%% TLS
%%====================================================================

tls_appears_only_when_configured(Config) ->
    [#{conn_opts := NoTls}] = pools(Config, "[outgoing_pools.rabbit.event_pusher]\n"),
    ?assertNot(maps:is_key(tls, NoTls)),
    [#{conn_opts := #{tls := Tls}}] =
        pools(Config, "[outgoing_pools.rabbit.event_pusher.connection.tls]\n"),
    ?assertEqual(#{verify_mode => peer, disconnect_on_failure => true, crl_files => [],
                   server_name_indication => #{enabled => true, protocol => default}},
                 Tls).

tls_section_is_processed(Config) ->
    [#{conn_opts := #{tls := Tls}}] =
        pools(Config, ["[outgoing_pools.http.default.connection]\n"
                       "host = \"https://h\"\n"
                       "[outgoing_pools.http.default.connection.tls]\n",
                       full_tls_toml(Config)]),
    ?assertEqual(full_tls_opts(Config), Tls).

certfile_without_keyfile_is_rejected(Config) ->
    #{"cert.pem" := Cert} = ?config(tls_files, Config),
    ?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.tls",
                   reason := tls_certfile_without_keyfile, certfile := Cert},
                 tls_error(Config, ["certfile = '", Cert, "'"])).

missing_tls_file_is_rejected(Config) ->
    [?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.tls." ++ Path,
                    reason := invalid_filename},
                  tls_error(Config, [Key, " = ", Value]))
     || {Key, Path, Value} <- [{"cacertfile", "cacertfile", "'/no/such/ca.pem'"},
                               {"keyfile", "keyfile", "'/no/such/key.pem'"},
                               {"crl_files", "crl_files", "['/no/such/crl.pem']"}]].

tls_option_values_are_validated(Config) ->
    ?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.tls.verify_mode",
                   reason := validate_enum_failed},
                 tls_error(Config, "verify_mode = \"whatever\"")),
    [?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.tls." ++ Key},
                  tls_error(Config, [Key, " = ", Value]))
     || {Key, Value} <- [{"ciphers", "[\"TLS_AES_256_GCM_SHA384\"]"}, {"password", "false"},
                         {"versions", "\"tlsv1.2\""}, {"disconnect_on_failure", "\"no\""}]].

server_name_indication_is_validated(Config) ->
    [#{conn_opts := #{tls := #{server_name_indication := SNI}}}] =
        pools(Config, "[outgoing_pools.rabbit.event_pusher.connection.tls]\n"
                      "server_name_indication = {enabled = false, host = \"h.example.com\"}\n"),
    ?assertEqual(#{enabled => false, host => "h.example.com", protocol => default}, SNI),
    Prefix = "outgoing_pools.rabbit.event_pusher.connection.tls.server_name_indication.",
    [?assertEqual(Prefix ++ Key,
                  maps:get(toml_path,
                           tls_error(Config, ["server_name_indication.", Key, " = ", Value])))
     || {Key, Value} <- [{"enabled", "\"maybe\""}, {"host", "\"\""},
                         {"protocol", "\"http\""}]].

server_only_tls_option_is_rejected(Config) ->
    #{"ca.pem" := CA} = ?config(tls_files, Config),
    ?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection.tls",
                   reason := unexpected_key, key := <<"dhfile">>},
                 tls_error(Config, ["dhfile = '", CA, "'"])).

%%====================================================================
%% MongooseIM's sections that our product does not use
%%====================================================================

operator_config_loads_with_our_module_options(Config) ->
    Path = filename:join(?config(data_dir, Config), "operator_mongooseim.toml"),
    {Opts, Warnings} = with_warnings(fun() -> mongoose_config_parser:parse_file(Path) end),
    Handlers = [#{pool_name => push_gateway, path => <<"events">>,
                  callback_module => mod_event_pusher_http_defaults}],
    ?assertEqual(#{mod_event_pusher => #{http => #{handlers => Handlers}},
                   mod_event_pusher_http => #{handlers => Handlers}},
                 opt({modules, <<"chat.example.org">>}, Opts)),
    %% host_config's modules replace the global ones; mod_disco is not started
    ?assertEqual(#{}, opt({modules, <<"example.net">>}, Opts)),
    ?assertEqual(lists:sort([{mod_disco, global}, {mod_roster, global}, {mod_presence, global},
                             {mod_disco, <<"example.net">>}]),
                 lists:sort([{M, HT} || #{module := M, host_type := HT} <- Warnings])),
    ?assertMatch([#{type := http, tag := push_gateway, opts := #{workers := 4},
                    conn_opts := #{host := "http://127.0.0.1:9090"}},
                  #{type := rdbms, tag := default, scope := global,
                    opts := #{workers := 8, call_timeout := 60000},
                    conn_opts := #{driver := pgsql, port := 5432, host := "db.internal",
                                   tls := #{required := true, verify_mode := peer}}}],
                 opt(outgoing_pools, Opts)),
    ?assertEqual([<<"chat.example.org">>, <<"example.net">>], opt(hosts, Opts)),
    ?assertEqual(notice, opt(loglevel, Opts)),
    ?assertEqual({cets, cets, mnesia},
                 {opt(sm_backend, Opts), opt(component_backend, Opts), opt(s2s_backend, Opts)}),
    ?assertEqual(#{mnesia => #{}, cets => #{backend => rdbms, cluster_name => chat}},
                 opt(internal_databases, Opts)),
    ?assertEqual(#{normal => #{max_rate => 4096}, fast => #{max_rate => 65536}},
                 opt(shaper, Opts)),
    ?assertMatch(#{local := [#{match := current_domain}],
                   admin := [#{user := <<"admin">>, server := <<"chat.example.org">>}]},
                 opt({acl, <<"example.net">>}, Opts)),
    ?assertEqual(#{c2s => [#{acl => all, value => allow}]},
                 opt({access, <<"example.net">>}, Opts)),
    ?assertMatch(#{c2s := [#{acl := blocked, value := deny}, _],
                   max_user_sessions := [#{acl := all, value := 5}]},
                 opt({access, <<"chat.example.org">>}, Opts)),
    %% accepted with light checks, not kept
    Unkept = [listen, auth, services, instrumentation, s2s, routing_modules],
    ?assertEqual([], [K || {K, _} <- Opts,
                           lists:member(K, Unkept) orelse
                               (is_tuple(K) andalso lists:member(element(1, K), Unkept))]).

misspelled_top_level_section_is_rejected(Config) ->
    ?assertMatch(#{toml_path := "", reason := unexpected_key, key := <<"acess">>},
                 the_error(Config, [general(), "[acess]\nc2s = []\n"])),
    ?assertMatch(#{toml_path := "", reason := unexpected_key, key := <<"listener">>},
                 the_error(Config, [general(), "[[listener.c2s]]\nport = 5222\n"])),
    %% a global-only section is not allowed in host_config
    ?assertMatch(#{toml_path := "host_config", reason := unexpected_key, key := <<"listen">>},
                 the_error(Config, [general(), host_config("localhost",
                                                           "[[host_config.listen.c2s]]\n"
                                                           "port = 5222")])).

keys_of_unemulated_sections_are_checked(Config) ->
    Error = fun(Toml) -> path_and_reason(the_error(Config, [general(), Toml])) end,
    ?assertEqual({"listen", unexpected_key}, Error("[[listen.c2ss]]\nport = 5222\n")),
    ?assertEqual({"listen.c2s", wrong_node_type}, Error("[listen.c2s]\nport = 5222\n")),
    ?assertEqual({"listen.c2s", missing_mandatory_keys}, Error("[[listen.c2s]]\nshaper = \"x\"\n")),
    ?assertEqual({"auth", unexpected_key}, Error("[auth.ldapp]\n")),
    ?assertEqual({"auth.methods", validate_enum_failed}, Error("[auth]\nmethods = [\"nis\"]\n")),
    %% removed from MongooseIM in 6.2
    ?assertEqual({"services", unexpected_key}, Error("[services.service_admin_extra]\n")),
    ?assertEqual({"instrumentation", unexpected_key}, Error("[instrumentation.graphite]\n")),
    ?assertEqual({"instrumentation.probe_interval", function_clause},
                 Error("[instrumentation]\nprobe_interval = 0\n")),
    ?assertEqual({"s2s.default_policy", validate_enum_failed},
                 Error("[s2s]\ndefault_policy = \"maybe\"\n")),
    ?assertEqual({"s2s", unexpected_key}, Error("[s2s.incoming]\n")),
    %% below those keys, values are not checked
    Opts = parse(Config, [general(), "[[listen.c2s]]\nport = 5222\nanything = {a = 1}\n"
                                     "[auth.rdbms]\nwhatever = true\n"
                                     "[s2s.outgoing]\nport = \"not checked\"\n"]),
    ?assertEqual(false, lists:keymember(listen, 1, Opts)).

mongooseim_module_is_accepted_but_not_started(Config) ->
    Toml = ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
            "[modules.mod_mam]\nbackend = \"rdbms\"\npm.archive_groupchats = false\n",
            dummy_module("name = \"n\""),
            host_config("b", "[host_config.modules.mod_roster]\nversioning = true")],
    {Opts, Warnings} = with_warnings(fun() -> parse(Config, Toml) end),
    ?assertEqual([mod_config_dummy], maps:keys(opt({modules, <<"a">>}, Opts))),
    ?assertEqual(#{}, opt({modules, <<"b">>}, Opts)),
    ?assertMatch([#{what := module_not_emulated, module := mod_mam, host_type := global},
                  #{what := module_not_emulated, module := mod_roster, host_type := <<"b">>}],
                 lists:sort(Warnings)),
    %% its options are not logged (they may hold credentials)
    ?assertEqual([], [W || W <- Warnings, maps:is_key(opts, W)]),
    %% names that are neither loadable nor MongooseIM's are still rejected
    ?assertMatch(#{toml_path := "modules", reason := module_not_found, module := mod_mamm},
                 the_error(Config, [general(), "[modules.mod_mamm]\n"])),
    ?assertMatch(#{toml_path := "modules.mod_mam", reason := wrong_node_type},
                 the_error(Config, [general(), "[modules]\nmod_mam = 1\n"])).

%% Doc: an rdbms connection as MongooseIM processes it: the port by driver,
%% query_timeout 5000, max_start_interval 30, tls.required false for pgsql;
%% the pool's call_timeout 60000.
rdbms_pool_connection_gets_mongooseim_defaults(Config) ->
    Conn = "host = \"db\"\ndatabase = \"d\"\nusername = \"u\"\npassword = \"p\"\n",
    Pool = fun(Driver, Extra) ->
                   [#{conn_opts := ConnOpts, opts := Opts}] =
                       pools(Config, ["[outgoing_pools.rdbms.default]\n",
                                      "[outgoing_pools.rdbms.default.connection]\n",
                                      "driver = \"", Driver, "\"\n", Conn, Extra]),
                   {ConnOpts, Opts}
           end,
    Base = #{host => "db", database => "d", username => "u", password => "p",
             query_timeout => 5000, max_start_interval => 30},
    ?assertEqual({Base#{driver => pgsql, port => 5432},
                  #{workers => 10, strategy => best_worker, call_timeout => 60000}},
                 Pool("pgsql", "")),
    ?assertEqual(Base#{driver => mysql, port => 3306}, element(1, Pool("mysql", ""))),
    ?assertEqual(Base#{driver => cockroachdb, port => 26257},
                 element(1, Pool("cockroachdb", ""))),
    ?assertMatch(#{port := 6432, keepalive_interval := 30, query_timeout := 0,
                   tls := #{required := false, verify_mode := none}},
                 element(1, Pool("pgsql", "port = 6432\nkeepalive_interval = 30\n"
                                          "query_timeout = 0\ntls.verify_mode = \"none\"\n"))),
    ?assertMatch(#{tls := #{required := true}},
                 element(1, Pool("pgsql", "tls.required = true\n"))).

%% Doc: bad rdbms pool options are rejected, each error naming its path.
rdbms_pool_options_are_validated_with_their_path(Config) ->
    Error = fun(Toml) ->
                    path_and_reason(the_error(Config, [general(),
                                                       "[outgoing_pools.rdbms.default]\n",
                                                       Toml]))
            end,
    Conn = "host = \"db\"\ndatabase = \"d\"\nusername = \"u\"\npassword = \"p\"\n",
    C = "outgoing_pools.rdbms.default.connection",
    ?assertEqual({"outgoing_pools.rdbms.default", missing_mandatory_keys}, Error("workers = 2\n")),
    ?assertEqual({C, missing_mandatory_keys}, Error(["[outgoing_pools.rdbms.default.connection]\n",
                                                     Conn])),
    ?assertEqual({C ++ ".driver", validate_enum_failed},
                 Error(["[outgoing_pools.rdbms.default.connection]\ndriver = \"odbc\"\n", Conn])),
    ?assertMatch({C, invalid_rdbms_connection_options},
                 Error("[outgoing_pools.rdbms.default.connection]\ndriver = \"pgsql\"\n"
                       "host = \"db\"\n")),
    #{missing_keys := [database, username, password]} =
        the_error(Config, [general(), "[outgoing_pools.rdbms.default.connection]\n"
                                      "driver = \"pgsql\"\nhost = \"db\"\n"]),
    Bad = fun(Line) ->
                  Error(["[outgoing_pools.rdbms.default.connection]\ndriver = \"pgsql\"\n",
                         Conn, Line])
          end,
    ?assertMatch({"outgoing_pools.rdbms.default.connection.port", _}, Bad("port = 70000\n")),
    ?assertMatch({"outgoing_pools.rdbms.default.connection.query_timeout", _},
                 Bad("query_timeout = -1\n")),
    ?assertMatch({"outgoing_pools.rdbms.default.connection.keepalive_interval", _},
                 Bad("keepalive_interval = 0\n")),
    ?assertMatch({"outgoing_pools.rdbms.default.connection.max_start_interval", _},
                 Bad("max_start_interval = 0\n")),
    ?assertMatch({"outgoing_pools.rdbms.default.connection.password", _},
                 Error("[outgoing_pools.rdbms.default.connection]\ndriver = \"pgsql\"\n"
                       "host = \"db\"\ndatabase = \"d\"\nusername = \"u\"\npassword = \"\"\n")),
    ?assertMatch({"outgoing_pools.rdbms.default.connection.tls.required", _},
                 Bad("tls.required = \"yes\"\n")),
    ?assertMatch({"outgoing_pools.rdbms.default.connection", unexpected_key},
                 Bad("settings = \"DSN=x\"\n")),
    ?assertEqual({C, invalid_rdbms_tls_options},
                 Error(["[outgoing_pools.rdbms.default.connection]\ndriver = \"mysql\"\n",
                        Conn, "tls.required = true\n"])).

other_pool_types_get_generic_options(Config) ->
    Pools = pools(Config, ["[outgoing_pools.cassandra.default]\n",
                           "[outgoing_pools.elastic.default]\n",
                           "[outgoing_pools.ldap.default]\nconnection.servers = [\"ldap\"]\n",
                           "[outgoing_pools.rdbms.default]\nscope = \"host_type\"\n"
                           "max_worker_queue_len = 10\n"
                           "connection = {driver = \"mysql\", port = 3307, host = \"db\", "
                           "database = \"d\", username = \"u\", password = \"p\"}\n",
                           "[outgoing_pools.redis.global_distrib]\n"
                           "strategy = \"random_worker\"\n"]),
    ?assertEqual([#{type => cassandra, scope => global, tag => default, conn_opts => #{},
                    opts => #{workers => 20, strategy => best_worker, call_timeout => 5000}},
                  #{type => elastic, scope => global, tag => default, conn_opts => #{},
                    opts => default_wpool_opts()},
                  #{type => ldap, scope => global, tag => default,
                    conn_opts => #{servers => [<<"ldap">>]}, opts => default_wpool_opts()},
                  #{type => rdbms, scope => host_type, tag => default,
                    conn_opts => #{driver => mysql, port => 3307, host => "db", database => "d",
                                   username => "u", password => "p", query_timeout => 5000,
                                   max_start_interval => 30},
                    opts => #{workers => 10, strategy => best_worker, call_timeout => 60000,
                              max_worker_queue_len => 10}},
                  #{type => redis, scope => global, tag => global_distrib, conn_opts => #{},
                    opts => #{workers => 10, strategy => random_worker, call_timeout => 5000}}],
                 Pools),
    %% the generic options are validated
    ?assertMatch(#{toml_path := "outgoing_pools.redis.default.workers"},
                 the_error(Config, [general(), "[outgoing_pools.redis.default]\nworkers = 0\n"])),
    ?assertMatch(#{toml_path := "outgoing_pools.redis.default",
                   reason := invalid_worker_pool_strategy_option},
                 the_error(Config, [general(), "[outgoing_pools.redis.default]\n"
                                               "strategy = \"next_worker\"\n"
                                               "max_worker_queue_len = 1\n"])),
    %% a pool of host_config belongs to its host type
    Opts = parse(Config, [general(), host_config("localhost",
                                                 "[host_config.outgoing_pools.redis.default]")]),
    ?assertMatch([#{type := redis, scope := <<"localhost">>}],
                 opt({outgoing_pools, <<"localhost">>}, Opts)).

general_backends_need_their_internal_database(Config) ->
    Opts = parse(Config, [general(), "sm_backend = \"cets\"\ncomponent_backend = \"cets\"\n"
                                     "s2s_backend = \"cets\"\n[internal_databases.cets]\n"]),
    ?assertEqual([cets, cets, cets],
                 [opt(K, Opts) || K <- [sm_backend, component_backend, s2s_backend]]),
    ?assertEqual(redis, opt(sm_backend, parse(Config, [general(), "sm_backend = \"redis\"\n"]))),
    ?assertMatch([#{what := backend_requires_internal_database,
                    missing := [#{option := sm_backend, backend := cets}]}],
                 errors(Config, [general(), "sm_backend = \"cets\"\n"])),
    %% with only cets configured, the mnesia defaults lack their database
    ?assertMatch([#{what := backend_requires_internal_database,
                    missing := [_, _, _]}],
                 errors(Config, [general(), "[internal_databases.cets]\n"])),
    ?assertMatch(#{toml_path := "general.s2s_backend", reason := validate_enum_failed},
                 the_error(Config, [general(), "s2s_backend = \"redis\"\n"])).

routing_modules_are_checked_and_left_out(Config) ->
    Opts = parse(Config, [general(), "routing_modules = [\"mongoose_router_global\"]\n"]),
    ?assertEqual(false, lists:keymember(routing_modules, 1, Opts)),
    ?assertMatch(#{toml_path := "general.routing_modules", reason := wrong_node_type},
                 the_error(Config, [general(), "routing_modules = \"mongoose_router_global\"\n"])),
    ?assertMatch(#{toml_path := "general.routing_modules"},
                 the_error(Config, [general(), "routing_modules = [\"\"]\n"])).

shapers_are_processed(Config) ->
    ?assertEqual(#{normal => #{max_rate => 1000}},
                 opt(shaper, parse(Config, [general(), "[shaper.normal]\nmax_rate = 1000\n"]))),
    ?assertEqual(false, lists:keymember(shaper, 1, parse(Config, general()))),
    ?assertEqual({"shaper.normal", missing_mandatory_keys},
                 path_and_reason(the_error(Config, [general(), "[shaper.normal]\n"]))),
    ?assertEqual({"shaper.normal.max_rate", function_clause},
                 path_and_reason(the_error(Config, [general(),
                                                    "[shaper.normal]\nmax_rate = 0\n"]))),
    ?assertMatch(#{toml_path := "shaper.normal", reason := unexpected_key, key := <<"rate">>},
                 the_error(Config, [general(), "[shaper.normal]\nmax_rate = 1\nrate = 1\n"])),
    ?assertMatch(#{toml_path := "host_config", reason := unexpected_key, key := <<"shaper">>},
                 the_error(Config, [general(), host_config("localhost",
                                                           "shaper.normal.max_rate = 1")])).

acl_and_access_are_processed_per_host_type(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
                          "[acl]\nadmin = [{user = \"Alice\", match = \"all\"}, "
                          "{server_glob = \"*.example.com\"}]\n",
                          "[access]\nmax_user_sessions = [{acl = \"all\", value = 10}]\n"
                          "register = [{acl = \"all\", value = \"deny\"}]\n",
                          host_config("b", "access.register = [{acl = \"admin\", "
                                           "value = \"allow\"}]")]),
    Admin = [#{match => all, user => <<"alice">>},
             #{match => current_domain, server_glob => <<"*.example.com">>}],
    ?assertEqual(#{admin => Admin}, opt({acl, <<"a">>}, Opts)),
    ?assertEqual(#{admin => Admin}, opt({acl, <<"b">>}, Opts)),
    ?assertEqual(#{max_user_sessions => [#{acl => all, value => 10}],
                   register => [#{acl => all, value => deny}]},
                 opt({access, <<"a">>}, Opts)),
    %% host_config replaces the whole section for its host type
    ?assertEqual(#{register => [#{acl => admin, value => allow}]},
                 opt({access, <<"b">>}, Opts)),
    ?assertEqual({"acl.admin.match", validate_enum_failed},
                 path_and_reason(the_error(Config, [general(),
                                                    "[acl]\nadmin = [{match = \"some\"}]\n"]))),
    ?assertEqual({"acl.admin", unexpected_key},
                 path_and_reason(the_error(Config, [general(),
                                                    "[acl]\nadmin = [{usr = \"x\"}]\n"]))),
    ?assertEqual({"access.c2s", missing_mandatory_keys},
                 path_and_reason(the_error(Config, [general(),
                                                    "[access]\nc2s = [{acl = \"all\"}]\n"]))),
    ?assertEqual({"access.c2s.value", wrong_type},
                 path_and_reason(the_error(Config, [general(),
                                                    "[access]\nc2s = [{acl = \"all\", "
                                                    "value = 1.5}]\n"]))).

%%====================================================================
%% Errors
%%====================================================================

toml_syntax_error_is_a_config_error(Config) ->
    ?assertMatch([#{class := error, what := toml_parsing_failed, text := <<"TOML", _/binary>>}],
                 errors(Config, "[general\nhosts = \n")).

missing_file_is_a_config_error(Config) ->
    Path = filename:join(?config(priv_dir, Config), "no_such_file.toml"),
    ?assertError({config_error, _, [#{what := toml_parsing_failed}]},
                 mongoose_config_parser:parse_file(Path)).

non_toml_file_is_a_config_error(Config) ->
    Path = filename:join(?config(priv_dir, Config), "mongooseim.cfg"),
    ?assertError({config_error, _, [#{what := unsupported_config_format}]},
                 mongoose_config_parser:parse_file(Path)).

errors_of_several_sections_are_all_reported(Config) ->
    Errors = errors(Config, ["[general]\nhosts = [\"a\"]\ndefault_server_domain = \"a\"\n"
                             "language = \"\"\n",
                             "[outgoing_pools.http.default]\nworkers = 0\n"
                             "connection.host = \"h\"\n",
                             "[outgoing_pools.rabbit.event_pusher]\nconnection.port = -1\n",
                             dummy_module("count = 1")]),
    ?assertEqual(["general.language",
                  "modules.mod_config_dummy",
                  "outgoing_pools.http.default.workers",
                  "outgoing_pools.rabbit.event_pusher.connection.port"],
                 lists:sort([P || #{toml_path := P} <- Errors])).

error_names_path_value_and_reason(Config) ->
    Error = dummy_error(Config, "name = \"n\"\nkind = \"ugly\""),
    ?assertMatch(#{class := error,
                   what := toml_processing_failed,
                   text := "Config value rejected by its validator",
                   toml_path := "modules.mod_config_dummy.kind",
                   toml_value := <<"ugly">>,
                   reason := validate_enum_failed,
                   stacktrace := [_ | _]},
                 Error).

secrets_are_not_in_errors(Config) ->
    Conn = "[outgoing_pools.rabbit.event_pusher.connection]\n",
    Errors = [the_error(Config, [general(), Conn, Body])
              || Body <- ["password = \"s3cret\"\nheartbeat = 1\n", % section value
                          "password = 735323\n",                    % wrong type
                          "tls.password = \"s3cret\"\ntls.verify_mode = \"x\"\n"]],
    [?assertMatch(#{toml_path := "outgoing_pools.rabbit.event_pusher.connection" ++ _}, E)
     || E <- Errors],
    %% secrets of MongooseIM's other sections
    OtherErrors = [the_error(Config, [general(), Toml])
                   || Toml <- ["[s2s]\nshared = 735323\n",
                               "[s2s]\nshared = \"s3cret\"\nincoming = 1\n",
                               "[[listen.component]]\npassword = \"s3cret\"\n",
                               "[auth.jwt]\nsecret.value = \"s3cret\"\n[auth.nis]\n"]],
    ?assertEqual(["s2s.shared", "s2s", "listen.component", "auth"],
                 [P || #{toml_path := P} <- OtherErrors]),
    Text = lists:flatten(io_lib:format("~p", [Errors ++ OtherErrors])),
    ?assertEqual(nomatch, string:find(Text, "s3cret")),
    ?assertEqual(nomatch, string:find(Text, "735323")).

%%====================================================================
%% Helpers
%%====================================================================

general() ->
    "[general]\n"
    "  hosts = [\"localhost\"]\n"
    "  default_server_domain = \"localhost\"\n".

host_config(HostType, Body) ->
    ["[[host_config]]\n  host_type = \"", HostType, "\"\n", Body, "\n"].

dummy_module(Body) ->
    ["[modules.mod_config_dummy]\n", Body, "\n"].

dummy_opts(Config, Body) ->
    #{mod_config_dummy := Opts} =
        opt({modules, <<"localhost">>}, parse(Config, [general(), dummy_module(Body)])),
    Opts.

dummy_error(Config, Body) ->
    the_error(Config, [general(), dummy_module(Body)]).

pools(Config, Toml) ->
    opt(outgoing_pools, parse(Config, [general(), Toml])).

tls_error(Config, Body) ->
    the_error(Config, [general(), "[outgoing_pools.rabbit.event_pusher.connection.tls]\n",
                       Body, "\n"]).

%% Every TLS option of a client (file names as TOML literal strings).
full_tls_toml(Config) ->
    #{"ca.pem" := CA, "cert.pem" := Cert, "key.pem" := Key, "crl.pem" := Crl} =
        ?config(tls_files, Config),
    ["verify_mode = \"selfsigned_peer\"\n"
     "certfile = '", Cert, "'\n"
     "keyfile = '", Key, "'\n"
     "password = \"secret\"\n"
     "cacertfile = '", CA, "'\n"
     "ciphers = \"ECDHE-RSA-AES256-GCM-SHA384\"\n"
     "versions = [\"tlsv1.2\", \"tlsv1.3\"]\n"
     "disconnect_on_failure = false\n"
     "crl_files = ['", Crl, "']\n"
     "server_name_indication.enabled = true\n"
     "server_name_indication.host = \"push.example.com\"\n"
     "server_name_indication.protocol = \"https\"\n"].

full_tls_opts(Config) ->
    #{"ca.pem" := CA, "cert.pem" := Cert, "key.pem" := Key, "crl.pem" := Crl} =
        ?config(tls_files, Config),
    #{verify_mode => selfsigned_peer,
      certfile => Cert,
      keyfile => Key,
      password => "secret",
      cacertfile => CA,
      ciphers => "ECDHE-RSA-AES256-GCM-SHA384",
      versions => ['tlsv1.2', 'tlsv1.3'],
      disconnect_on_failure => false,
      crl_files => [Crl],
      server_name_indication => #{enabled => true, host => "push.example.com",
                                  protocol => https}}.

default_sni() ->
    #{enabled => true, protocol => default}.

default_wpool_opts() ->
    #{workers => 10, strategy => best_worker, call_timeout => 5000}.

%% Parses TOML text the way MongooseIM reads its config: from a file.
parse(Config, Toml) ->
    Name = "cfg_" ++ integer_to_list(erlang:unique_integer([positive])) ++ ".toml",
    Path = filename:join(?config(priv_dir, Config), Name),
    ok = file:write_file(Path, Toml),
    mongoose_config_parser:parse_file(Path).

errors(Config, Toml) ->
    try parse(Config, Toml) of
        Opts -> ct:fail({config_accepted, Opts})
    catch
        error:{config_error, Text, Errors} when is_list(Text) -> Errors
    end.

%% The one error a config raises.
the_error(Config, Toml) ->
    case errors(Config, Toml) of
        [Error] -> Error;
        Errors -> ct:fail({expected_one_error, Errors})
    end.

path_and_reason(#{toml_path := Path, reason := Reason}) ->
    {Path, Reason}.

%% Fun's result and the reports it logged as warnings.
with_warnings(Fun) ->
    Id = list_to_atom("config_warnings_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = logger:add_handler(Id, ?MODULE, #{level => warning, config => #{test_pid => self()}}),
    try Fun() of
        Result -> {Result, received_warnings()}
    after
        logger:remove_handler(Id)
    end.

received_warnings() ->
    receive
        {config_warning, Report} -> [Report | received_warnings()]
    after 0 ->
            []
    end.

%% @doc logger handler callback: sends the test case its own warnings (test
%% cases run in parallel; handlers run in the process that logs).
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{msg := {report, Report}, meta := #{pid := Pid}}, #{config := #{test_pid := Pid}}) ->
    Pid ! {config_warning, Report},
    ok;
log(_Event, _HandlerConfig) ->
    ok.

opt(Key, Opts) ->
    case lists:keyfind(Key, 1, Opts) of
        {Key, Value} -> Value;
        false -> ct:fail({option_not_found, Key, Opts})
    end.

%% Option by option, so that a failure names the key.
assert_same_options(Expected, Actual) ->
    ?assertEqual(lists:sort([K || {K, _} <- Expected]), lists:sort([K || {K, _} <- Actual])),
    [?assertEqual({Key, Value}, lists:keyfind(Key, 1, Actual)) || {Key, Value} <- Expected],
    ok.
