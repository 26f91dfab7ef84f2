using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service;

/// <summary>
/// One row of the daemon's table of configuration sections: the section's name, its options type (bound with
/// unknown keys refused, validated on start), its validator, an optional post-configure (paths made absolute),
/// and an optional extra key check for what the options type alone cannot tell (keys of another source kind).
/// Registration, the unknown-key check and the resolution that <c>check-config</c> shares with start all read
/// this one row, so a new section is one line in <see cref="EdgeRunnerHost"/>.
/// </summary>
internal sealed class OptionsSection
{
    private readonly Action<IServiceCollection, IConfiguration> _register;
    private readonly Func<IServiceProvider, object> _resolve;
    private readonly Action<IConfigurationSection, List<string>>? _extraKeyCheck;
    private readonly bool _keyCheckReplacesTypeCheck;

    private OptionsSection(string name, Type optionsType, Action<IServiceCollection, IConfiguration> register, Func<IServiceProvider, object> resolve, Action<IConfigurationSection, List<string>>? extraKeyCheck, bool keyCheckReplacesTypeCheck, bool resolveFirst)
    {
        _keyCheckReplacesTypeCheck = keyCheckReplacesTypeCheck;
        Name = name;
        OptionsType = optionsType;
        _register = register;
        _resolve = resolve;
        _extraKeyCheck = extraKeyCheck;
        ResolveFirst = resolveFirst;
    }

    /// <summary>The section's name (the top-level configuration key).</summary>
    public string Name { get; }

    /// <summary>The sealed options class the section binds to.</summary>
    public Type OptionsType { get; }

    /// <summary>
    /// Resolved (bound and validated) before every other section, and the others only when it passes: the ONNX
    /// Runtime library must be chosen before checking models loads ONNX Runtime, after which the process has its library for good.
    /// </summary>
    public bool ResolveFirst { get; }

    /// <summary>A section bound to <typeparamref name="TOptions"/> and validated by <typeparamref name="TValidator"/>.</summary>
    /// <param name="name">The section's name.</param>
    /// <param name="postConfigure">Runs after binding, before validation (e.g. relative paths made absolute); null for none.</param>
    /// <param name="extraKeyCheck">Adds "key: problem" lines the options type cannot find by itself; null for none.</param>
    /// <param name="keyCheckReplacesTypeCheck">The extra key check covers the whole section (its types are chosen by a key, e.g. sensor source kinds), so the check by the options type is skipped.</param>
    /// <param name="resolveFirst">See <see cref="ResolveFirst"/>.</param>
    public static OptionsSection Of<TOptions, TValidator>(string name, Action<TOptions>? postConfigure = null, Action<IConfigurationSection, List<string>>? extraKeyCheck = null, bool keyCheckReplacesTypeCheck = false, bool resolveFirst = false)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions> =>
        new(
            name,
            typeof(TOptions),
            (services, configuration) =>
            {
                services.AddOptions<TOptions>()
                    .Bind(configuration.GetSection(name), o => o.ErrorOnUnknownConfiguration = true)
                    .ValidateOnStart();
                services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
                if (postConfigure is not null)
                {
                    services.PostConfigure(postConfigure);
                }
            },
            services => services.GetRequiredService<IOptions<TOptions>>().Value,
            extraKeyCheck,
            keyCheckReplacesTypeCheck,
            resolveFirst);

    /// <summary>Registers the options: bound from the section, unknown keys refused, validated on start, post-configured.</summary>
    public void Register(IServiceCollection services, IConfiguration configuration) => _register(services, configuration);

    /// <summary>Adds a line to <paramref name="errors"/> for every key of the section that its options type (or the extra check) does not know.</summary>
    public void CollectUnknownKeys(IConfiguration configuration, List<string> errors)
    {
        var section = configuration.GetSection(Name);
        if (!_keyCheckReplacesTypeCheck)
        {
            ConfigurationKeyChecker.CollectUnknownKeys(section, OptionsType, errors);
        }

        _extraKeyCheck?.Invoke(section, errors);
    }

    /// <summary>Binds and validates the options as start does (throws what start would throw).</summary>
    public void Resolve(IServiceProvider services) => _resolve(services);
}
