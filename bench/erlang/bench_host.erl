%% What every BEAM row does around its measurement: the entry point of
%% `erl -run', the knobs from the environment, and the test host booted as
%% MongooseIM boots (doc/compatibility.md §1: ejabberd_sup,
%% mongoose_config_parser:parse_file/1, mongoose_config:set_opts/1,
%% mongoose_wpool:start_configured_pools/0, mongoose_modules:start/0,
%% gen_hook:reload_hooks/0; ep_test_host runs that sequence).
-module(bench_host).

-export([main/2, boot/1, shutdown/0, host_type/0, int_env/2]).

%% Runs Row() with the logger at warning (hook errors and dropped events are
%% logged at warning or above; info lines would only measure the logger),
%% then halts: status 0, or 1 with the error printed if Row() raised.
-spec main(string() | atom(), fun(() -> term())) -> no_return().
main(Name, Row) ->
    ok = logger:set_primary_config(level, warning),
    Status = try
                 _ = Row(),
                 0
             catch
                 Class:Reason:Stacktrace ->
                     io:format(standard_error, "row ~s failed: ~p:~p~n~p~n",
                               [Name, Class, Reason, Stacktrace]),
                     1
             end,
    halt(Status).

%% Boots the test host from Toml, the sections after `[general]' (one host,
%% localhost).
-spec boot(iodata()) -> ok.
boot(Toml) ->
    ep_test_host:boot([ep_test_host:general_toml(), Toml]).

-spec shutdown() -> ok.
shutdown() ->
    ep_test_host:shutdown().

-spec host_type() -> binary().
host_type() ->
    ep_test_host:host_type().

%% An integer from the environment, or Default.
-spec int_env(string(), integer()) -> integer().
int_env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> list_to_integer(V)
    end.
