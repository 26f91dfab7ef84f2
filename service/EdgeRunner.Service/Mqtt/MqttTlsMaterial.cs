using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The files behind <c>Mqtt:Tls</c>, read afresh for every connect (a rotated certificate is used from the next
/// reconnect on, no restart), and the words for why a TLS connect failed: the server's certificate as judged
/// here (unknown CA, name mismatch, expired), or the broker's refusal of the handshake (its TLS alert).
/// </summary>
internal sealed class MqttTlsMaterial : IDisposable
{
    private MqttTlsMaterial(X509Certificate2Collection trustedCas, X509Certificate2? clientCertificate)
    {
        TrustedCas = trustedCas;
        ClientCertificate = clientCertificate;
    }

    /// <summary>The CAs of <c>Mqtt:Tls:CaFile</c>; empty for the system's trust store.</summary>
    public X509Certificate2Collection TrustedCas { get; }

    /// <summary>The client certificate with its key (mutual TLS); null without one.</summary>
    public X509Certificate2? ClientCertificate { get; }

    /// <summary>Reads the files now; on failure <paramref name="error"/> says "{key}: {problem}" for the file that cannot be used.</summary>
    public static MqttTlsMaterial? TryLoad(MqttTlsOptions options, out string? error)
    {
        ArgumentNullException.ThrowIfNull(options);
        error = null;
        var cas = new X509Certificate2Collection();
        if (options.CaFile.Length > 0)
        {
            try
            {
                cas.ImportFromPemFile(options.CaFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
            {
                error = $"Mqtt:Tls:CaFile: '{options.CaFile}' cannot be read as PEM certificates: {ex.Message}";
                return null;
            }

            if (cas.Count == 0)
            {
                error = $"Mqtt:Tls:CaFile: '{options.CaFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
                return null;
            }
        }

        X509Certificate2? client = null;
        if (options.CertFile.Length > 0)
        {
            try
            {
                // The key must belong to the certificate: CreateFromPemFile refuses a key that does not match.
                client = X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                error = $"{(File.Exists(options.CertFile) ? "Mqtt:Tls:KeyFile" : "Mqtt:Tls:CertFile")}: {ex.Message}";
            }
            catch (CryptographicException ex)
            {
                error = $"Mqtt:Tls:KeyFile: '{options.KeyFile}' is not an unencrypted PEM private key of the certificate in '{options.CertFile}' ({ex.Message})";
            }
            catch (ArgumentException ex) when (ex.ParamName == "privateKey")
            {
                error = $"Mqtt:Tls:KeyFile: '{options.KeyFile}' is not the private key of the certificate in '{options.CertFile}'";
            }
            catch (ArgumentException ex)
            {
                error = $"Mqtt:Tls:CertFile: '{options.CertFile}' holds no usable PEM certificate and key ({ex.Message})";
            }

            if (error is not null)
            {
                foreach (var ca in cas)
                {
                    ca.Dispose();
                }

                return null;
            }
        }

        return new MqttTlsMaterial(cas, client);
    }

    /// <summary>"CN=x (issued by CN=y, valid until ...)": enough to tell certificates apart in a log line; no secret in it.</summary>
    public static string Describe(X509Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var x509 = certificate as X509Certificate2;
        var until = x509 is null ? string.Empty : $", valid {x509.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} to {x509.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC";
        return $"'{certificate.Subject}' (issued by '{certificate.Issuer}'{until})";
    }

    /// <summary>
    /// Why the server's certificate is refused, in words; null when it is acceptable. Hostname verification is
    /// never waived: only <c>AllowUntrusted</c> accepts a certificate for another name.
    /// </summary>
    public static string? WhyServerCertificateRefused(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, string host, bool customCa)
    {
        if (errors == SslPolicyErrors.None)
        {
            return null;
        }

        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return "the broker sent no certificate";
        }

        var described = Describe(certificate);
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            var statuses = chain?.ChainStatus.Select(s => s.Status).Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s) ?? X509ChainStatusFlags.NoError;
            if (statuses.HasFlag(X509ChainStatusFlags.NotTimeValid))
            {
                return $"the broker's certificate {described} has expired or is not yet valid";
            }

            if (statuses.HasFlag(X509ChainStatusFlags.UntrustedRoot) || statuses.HasFlag(X509ChainStatusFlags.PartialChain))
            {
                return $"unknown CA: the broker's certificate {described} is not signed by a CA in {(customCa ? "Mqtt:Tls:CaFile" : "the system's trust store (set Mqtt:Tls:CaFile for a private CA)")}";
            }

            if (statuses.HasFlag(X509ChainStatusFlags.Revoked))
            {
                return $"the broker's certificate {described} is revoked";
            }

            var detail = chain is null ? "unknown chain error" : string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0));
            return $"the broker's certificate {described} does not validate: {detail}";
        }

        return errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)
            ? $"name mismatch: the broker's certificate {described} is not issued for '{host}' (Mqtt:Host must be a name or address in its subject alternative names)"
            : $"the broker's certificate {described} is refused ({errors})";
    }

    /// <summary>
    /// Why a handshake the broker ended failed, from the TLS alert in <paramref name="exception"/>'s chain (OpenSSL's
    /// words, e.g. "alert certificate expired"); null when the failure was not a TLS one.
    /// </summary>
    public static string? WhyHandshakeFailed(Exception exception, X509Certificate2? clientCertificate, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var tls = false;
        var messages = new StringBuilder();
        for (var e = exception; e is not null; e = e.InnerException)
        {
            tls |= e is AuthenticationException || e.GetType().FullName?.Contains("Ssl", StringComparison.Ordinal) == true;
            messages.Append(e.Message).Append(' ');
        }

        var text = messages.ToString();
        var alert = AlertIn(text);
        if (!tls && alert is null)
        {
            return null;
        }

        // Our own certificate's dates are known here: an expired one is the likeliest reason a broker ends the handshake.
        if (clientCertificate is not null && clientCertificate.NotAfter.ToUniversalTime() < now.UtcDateTime)
        {
            return $"handshake refused by the broker{(alert is null ? string.Empty : $" ({alert})")}: the client certificate {Describe(clientCertificate)} has expired; replace Mqtt:Tls:CertFile and KeyFile (read again at every connect)";
        }

        if (alert is not null)
        {
            return alert.Contains("certificate required", StringComparison.Ordinal) && clientCertificate is null
                ? $"handshake refused by the broker ({alert}): it requires a client certificate; set Mqtt:Tls:CertFile and KeyFile"
                : $"handshake refused by the broker ({alert})";
        }

        return $"TLS handshake failed: {exception.Message}";
    }

    /// <inheritdoc />
    public void Dispose()
    {
        ClientCertificate?.Dispose();
        foreach (var ca in TrustedCas)
        {
            ca.Dispose();
        }
    }

    // OpenSSL reports a peer's alert as "... sslv3 alert certificate expired" or "... tlsv13 alert certificate required".
    private static string? AlertIn(string text)
    {
        var at = text.IndexOf(" alert ", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var start = text.LastIndexOf(':', at) + 1;
        var end = text.IndexOfAny(['\n', '\r', ')', '.'], at);
        return text[start..(end < 0 ? text.Length : end)].Trim();
    }
}
