%% @doc The options of `[modules.mod_event_pusher.sns]' are accepted,
%% defaulted and rejected as doc/compatibility.md §6 says, each error naming the option's
%% TOML path; and `sns_host' becomes the endpoint URL as documented.
-module(mod_event_pusher_sns_config_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

%% The TOML parsing and error picking shared by the config suites.
-import(ep_config_check, [general/0, modules/2, parse/2, the_error/2, opt/2]).

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1]).

-export([required_options_get_mongooseim_defaults/1,
         every_option_is_accepted/1,
         backend_module_gets_the_backend_options/1,
         host_config_sets_options_for_its_host_type/1,
         each_missing_required_option_is_rejected/1,
         each_empty_required_option_is_rejected/1,
         non_string_options_are_rejected/1,
         missing_plugin_module_is_rejected/1,
         pool_size_must_be_positive/1,
         retry_options_must_be_non_negative/1,
         publish_batching_must_be_a_boolean/1,
         unknown_option_is_rejected/1,
         bare_sns_host_is_reached_over_https/1,
         sns_host_with_a_scheme_is_used_as_given/1]).

-define(PATH, "modules.mod_event_pusher.sns").
-define(REQUIRED, [{"sns_host", "sns.eu-west-1.amazonaws.com"},
                   {"region", "eu-west-1"},
                   {"access_key_id", "AKIAIOSFODNN7EXAMPLE"},
                   {"secret_access_key", "KEY"},
                   {"account_id", "123456789012"}]).

%%====================================================================
%% Setup
%%====================================================================

all() ->
    [{group, accepted}, {group, rejected}, {group, endpoint}].

groups() ->
    [{accepted, [parallel], [required_options_get_mongooseim_defaults,
                             every_option_is_accepted,
                             backend_module_gets_the_backend_options,
                             host_config_sets_options_for_its_host_type]},
     {rejected, [parallel], [each_missing_required_option_is_rejected,
                             each_empty_required_option_is_rejected,
                             non_string_options_are_rejected,
                             missing_plugin_module_is_rejected,
                             pool_size_must_be_positive,
                             retry_options_must_be_non_negative,
                             publish_batching_must_be_a_boolean,
                             unknown_option_is_rejected]},
     {endpoint, [parallel], [bare_sns_host_is_reached_over_https,
                             sns_host_with_a_scheme_is_used_as_given]}].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

%%====================================================================
%% Accepted
%%====================================================================

required_options_get_mongooseim_defaults(doc) ->
    ["The five required options, as strings, plus MongooseIM's defaults; no topic, no "
     "publish_batching key"];
required_options_get_mongooseim_defaults(Config) ->
    ?assertEqual(#{sns_host => "sns.eu-west-1.amazonaws.com",
                   region => "eu-west-1",
                   access_key_id => "AKIAIOSFODNN7EXAMPLE",
                   secret_access_key => "KEY",
                   account_id => "123456789012",
                   plugin_module => mod_event_pusher_sns_defaults,
                   pool_size => 100,
                   publish_retry_count => 2,
                   publish_retry_time_ms => 50},
                 sns_opts(Config, [])).

every_option_is_accepted(doc) ->
    ["Every option with a valid value, the limits included (retry options 0)"];
every_option_is_accepted(Config) ->
    Opts = sns_opts(Config, [{"presence_updates_topic", "\"user_presence_updated\""},
                             {"pm_messages_topic", "\"user_message_sent\""},
                             {"muc_messages_topic", "\"user_messagegroup_sent\""},
                             {"plugin_module", "\"ep_sns_plugin\""},
                             {"pool_size", "1"},
                             {"publish_retry_count", "0"},
                             {"publish_retry_time_ms", "0"},
                             {"publish_batching", "false"}]),
    ?assertEqual(#{sns_host => "sns.eu-west-1.amazonaws.com",
                   region => "eu-west-1",
                   access_key_id => "AKIAIOSFODNN7EXAMPLE",
                   secret_access_key => "KEY",
                   account_id => "123456789012",
                   presence_updates_topic => "user_presence_updated",
                   pm_messages_topic => "user_message_sent",
                   muc_messages_topic => "user_messagegroup_sent",
                   plugin_module => ep_sns_plugin,
                   pool_size => 1,
                   publish_retry_count => 0,
                   publish_retry_time_ms => 0,
                   publish_batching => false},
                 Opts).

backend_module_gets_the_backend_options(doc) ->
    ["mod_event_pusher_sns is a dependency of mod_event_pusher with the sns options"];
backend_module_gets_the_backend_options(Config) ->
    Modules = modules(Config, sns_toml([{"pm_messages_topic", "\"pm\""}])),
    #{mod_event_pusher := #{sns := Opts}, mod_event_pusher_sns := Opts} = Modules,
    ?assertMatch(#{pm_messages_topic := "pm"}, Opts).

host_config_sets_options_for_its_host_type(doc) ->
    ["A host_config section configures the sns backend of its own host type only"];
host_config_sets_options_for_its_host_type(Config) ->
    Opts = parse(Config, ["[general]\nhosts = [\"a\", \"b\"]\ndefault_server_domain = \"a\"\n",
                          "[[host_config]]\nhost_type = \"b\"\n",
                          "[host_config.modules.mod_event_pusher.sns]\n",
                          required_toml(), "pool_size = 7\n"]),
    ?assertEqual(#{}, opt({modules, <<"a">>}, Opts)),
    ?assertMatch(#{mod_event_pusher := #{sns := #{pool_size := 7}},
                   mod_event_pusher_sns := #{pool_size := 7}},
                 opt({modules, <<"b">>}, Opts)).

%%====================================================================
%% Rejected
%%====================================================================

each_missing_required_option_is_rejected(doc) ->
    ["Leaving out any of sns_host, region, access_key_id, secret_access_key, account_id "
     "is an error naming it"];
each_missing_required_option_is_rejected(Config) ->
    [?assertMatch(#{toml_path := ?PATH, reason := missing_mandatory_keys,
                    missing_keys := [Missing]},
                  the_error(Config, [general(), "[modules.mod_event_pusher.sns]\n",
                                     [[K, " = \"", V, "\"\n"]
                                      || {K, V} <- ?REQUIRED, list_to_binary(K) =/= Missing]]))
     || Missing <- [list_to_binary(K) || {K, _} <- ?REQUIRED]].

each_empty_required_option_is_rejected(doc) ->
    ["Each of the five required options must be a non-empty string"];
each_empty_required_option_is_rejected(Config) ->
    [?assertMatch(#{toml_path := ?PATH "." ++ Key, reason := function_clause,
                    text := "Config value rejected by its validator"},
                  option_error(Config, Key, "\"\""))
     || {Key, _} <- ?REQUIRED].

non_string_options_are_rejected(doc) ->
    ["String options given a number, a boolean, a table or an array are rejected, each naming "
     "the option"];
non_string_options_are_rejected(Config) ->
    [?assertMatch(#{toml_path := ?PATH "." ++ Key, reason := wrong_type},
                  option_error(Config, Key, "1"))
     || {Key, _} <- ?REQUIRED],
    [?assertMatch(#{toml_path := ?PATH "." ++ Key},
                  option_error(Config, Key, Value))
     || {Key, Value} <- [{"presence_updates_topic", "{}"},
                         {"pm_messages_topic", "true"},
                         {"muc_messages_topic", "[1, 2]"},
                         {"plugin_module", "1"}]].

missing_plugin_module_is_rejected(doc) ->
    ["plugin_module must name a module that can be loaded"];
missing_plugin_module_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?PATH ".plugin_module", reason := module_not_found,
                   module := plug_and_play},
                 option_error(Config, "plugin_module", "\"plug_and_play\"")).

pool_size_must_be_positive(doc) ->
    ["pool_size 0 or a non-integer is rejected"];
pool_size_must_be_positive(Config) ->
    ?assertMatch(#{toml_path := ?PATH ".pool_size", reason := function_clause},
                 option_error(Config, "pool_size", "0")),
    ?assertMatch(#{toml_path := ?PATH ".pool_size", reason := wrong_type},
                 option_error(Config, "pool_size", "\"10\"")).

retry_options_must_be_non_negative(doc) ->
    ["publish_retry_count and publish_retry_time_ms -1 are rejected"];
retry_options_must_be_non_negative(Config) ->
    [?assertMatch(#{toml_path := ?PATH "." ++ Key, reason := function_clause},
                  option_error(Config, Key, "-1"))
     || Key <- ["publish_retry_count", "publish_retry_time_ms"]],
    ?assertMatch(#{toml_path := ?PATH ".publish_retry_time_ms", reason := wrong_type},
                 option_error(Config, "publish_retry_time_ms", "1.5")).

publish_batching_must_be_a_boolean(doc) ->
    ["(ours) publish_batching is true or false"];
publish_batching_must_be_a_boolean(Config) ->
    [?assertMatch(#{toml_path := ?PATH ".publish_batching", reason := wrong_type},
                  option_error(Config, "publish_batching", Value))
     || Value <- ["\"true\"", "1"]].

unknown_option_is_rejected(doc) ->
    ["An option MongooseIM does not know is rejected, naming it"];
unknown_option_is_rejected(Config) ->
    ?assertMatch(#{toml_path := ?PATH, reason := unexpected_key, key := <<"topic_arn">>},
                 option_error(Config, "topic_arn", "\"arn:aws:sns:x:y:z\"")).

%%====================================================================
%% Endpoint
%%====================================================================

bare_sns_host_is_reached_over_https(doc) ->
    ["A bare sns_host (MongooseIM's form) means https on the default port"];
bare_sns_host_is_reached_over_https(_Config) ->
    ?assertEqual(<<"https://sns.eu-west-1.amazonaws.com">>,
                 mongoose_event_pusher_nif_config:endpoint("sns.eu-west-1.amazonaws.com")),
    ?assertEqual(<<"https://localhost:4566">>, mongoose_event_pusher_nif_config:endpoint("localhost:4566")).

sns_host_with_a_scheme_is_used_as_given(doc) ->
    ["(ours) sns_host starting with http:// or https:// is the endpoint URL as written"];
sns_host_with_a_scheme_is_used_as_given(_Config) ->
    [?assertEqual(list_to_binary(Url), mongoose_event_pusher_nif_config:endpoint(Url))
     || Url <- ["http://127.0.0.1:4566", "https://sns.example.com/", "HTTP://Upper:1"]].

%%====================================================================
%% Helpers
%%====================================================================

required_toml() ->
    [[K, " = \"", V, "\"\n"] || {K, V} <- ?REQUIRED].

%% The sns section: the required options, then Extra ({Key, TomlValue}),
%% which may override one of them.
sns_toml(Extra) ->
    Required = [{K, ["\"", V, "\""]} || {K, V} <- ?REQUIRED, not lists:keymember(K, 1, Extra)],
    ["[modules.mod_event_pusher.sns]\n",
     [[K, " = ", V, "\n"] || {K, V} <- Required ++ Extra]].

sns_opts(Config, Extra) ->
    #{mod_event_pusher := #{sns := Opts}} = modules(Config, sns_toml(Extra)),
    Opts.

option_error(Config, Key, Value) ->
    the_error(Config, [general(), sns_toml([{Key, Value}])]).
