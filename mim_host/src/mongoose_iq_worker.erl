%% @doc The test host's `mongoose_iq_worker': a process running the IQs of
%% one queue (`one_queue', `{queues, N}') in order. Not linked to its
%% starter, so a handler registered by a test case outlives the case.
-module(mongoose_iq_worker).

-behaviour(gen_server).

-export([start/0, stop/1, process_iq/6]).
-export([init/1, handle_call/3, handle_cast/2]).

-spec start() -> {ok, pid()}.
start() ->
    gen_server:start(?MODULE, noargs, []).

-spec stop(pid()) -> ok.
stop(Pid) ->
    gen_server:cast(Pid, stop).

-spec process_iq(pid(), mongoose_iq_handler:t(), mongoose_acc:t(), jid:jid(), jid:jid(),
                 jlib:iq()) -> ok.
process_iq(Pid, Handler, Acc, From, To, IQ) ->
    gen_server:cast(Pid, {process_iq, Handler, Acc, From, To, IQ}).

-spec init(noargs) -> {ok, no_state}.
init(noargs) ->
    {ok, no_state}.

-spec handle_call(term(), gen_server:from(), no_state) -> {reply, ok, no_state}.
handle_call(_Request, _From, State) ->
    {reply, ok, State}.

-spec handle_cast(term(), no_state) -> {noreply, no_state} | {stop, normal, no_state}.
handle_cast({process_iq, Handler, Acc, From, To, IQ}, State) ->
    _ = mongoose_iq_handler:execute_handler(Handler, Acc, From, To, IQ),
    {noreply, State};
handle_cast(stop, State) ->
    {stop, normal, State}.
