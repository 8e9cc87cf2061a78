%% @doc Config-parsing helpers shared by the mod_event_pusher config suites:
%% write a TOML to the suite's priv_dir, parse it with the emulated
%% mongoose_config_parser, and pick out the options or the one error it raises.
-module(ep_config_check).

-include_lib("common_test/include/ct.hrl").

-export([general/0, parse/2, modules/2, pools/2, the_error/2, opt/2,
         path_and_reason/1]).

%% @doc The `[general]' section every test config starts with.
-spec general() -> string().
general() ->
    "[general]\nhosts = [\"localhost\"]\ndefault_server_domain = \"localhost\"\n".

%% @doc Parses `Toml' from a fresh file under the suite's priv_dir.
-spec parse(ct_suite:ct_config(), iodata()) -> [{term(), term()}].
parse(Config, Toml) ->
    Name = "cfg_" ++ integer_to_list(erlang:unique_integer([positive])) ++ ".toml",
    Path = filename:join(?config(priv_dir, Config), Name),
    ok = file:write_file(Path, Toml),
    mongoose_config_parser:parse_file(Path).

%% @doc The module options of host `localhost' for `general()' plus `Toml'.
-spec modules(ct_suite:ct_config(), iodata()) -> term().
modules(Config, Toml) ->
    opt({modules, <<"localhost">>}, parse(Config, [general(), Toml])).

%% @doc The outgoing pools for `general()' plus `Toml'.
-spec pools(ct_suite:ct_config(), iodata()) -> term().
pools(Config, Toml) ->
    opt(outgoing_pools, parse(Config, [general(), Toml])).

%% @doc The one error a config raises; fails if it is accepted or raises several.
-spec the_error(ct_suite:ct_config(), iodata()) -> term().
the_error(Config, Toml) ->
    try parse(Config, Toml) of
        Opts -> ct:fail({config_accepted, Opts})
    catch
        error:{config_error, _Text, [Error]} -> Error;
        error:{config_error, _Text, Errors} -> ct:fail({expected_one_error, Errors})
    end.

%% @doc The value of `Key' in parsed options; fails if absent.
-spec opt(term(), [tuple()]) -> term().
opt(Key, Opts) ->
    case lists:keyfind(Key, 1, Opts) of
        {Key, Value} -> Value;
        false -> ct:fail({option_not_found, Key, Opts})
    end.

%% @doc The TOML path and reason of a config error.
-spec path_and_reason(#{toml_path := term(), reason := term(), atom() => term()}) ->
          {term(), term()}.
path_and_reason(#{toml_path := Path, reason := Reason}) ->
    {Path, Reason}.
